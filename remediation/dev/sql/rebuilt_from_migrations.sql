-- Emulated Supabase database for the PRISM pipeline, variant "rebuilt from the migrations".
--
-- A second test double next to emulated_supabase.sql: the database a user got by
-- replaying the pipeline's own migration files into PostgreSQL (issue 14, "What that
-- database had"). Facts, not a full schema:
--   * service_role has BYPASSRLS; RLS enabled (not forced) on profiles,
--     assessment_sessions and assessment_responses;
--   * five policies on profiles: "Service role can manage profiles" (FOR ALL TO public
--     USING auth.role() = 'service_role', no WITH CHECK), svc_manage_profiles, and the
--     three "Users can insert/update/view their own profiles" on user_id = auth.uid();
--   * the three CHECK constraints of the emulation plus profiles_session_kind_check;
--   * three separate unique indexes on profiles.session_id plus UNIQUE (user_id, session_id);
--   * six triggers on profiles: the recursive update_fc_metrics_trigger, three AFTER INSERT
--     triggers upserting per-day type counts into dashboard_statistics (two through one
--     function, one through another), two BEFORE UPDATE triggers touching updated_at;
--   * no profiles.share_token; 57 columns on profiles;
--   * assessment_sessions without finalized_at and share_token_expires_at, share_token
--     NOT NULL without a default and two unique indexes on it, two BEFORE UPDATE
--     triggers touching updated_at;
--   * FC v1.2 seeded (6 blocks, 24 options, from remediation/data/fc_seed_v1.2.json) and
--     scoring_config.fc_expected_min = 24.
-- Everything else (roles, auth schema, the other tables, grants) as in the emulation.
--
-- Loading it twice is harmless (IF NOT EXISTS, OR REPLACE, catalog lookups, ON CONFLICT
-- DO NOTHING). remediation/dev/emulation.py drops the other variant's tables first when
-- switching. The rows after the "@seed" marker are also re-run on their own by the
-- loader (tests empty the pipeline tables between tests).

SET client_min_messages = warning;

-- 1. Roles and the auth schema: supabase_roles_and_auth.sql (loaded first) ------

-- Hosted Supabase, and this database: service_role bypasses RLS.
ALTER ROLE service_role BYPASSRLS;


-- 3. Tables --------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS public.assessment_sessions (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id                uuid NULL,
  session_type           text NOT NULL DEFAULT 'prism',
  started_at             timestamptz NOT NULL DEFAULT now(),
  completed_at           timestamptz NULL,
  total_questions        int NULL,
  completed_questions    int NULL DEFAULT 0,
  metadata               jsonb NULL,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  email                  text NULL,
  status                 text NULL DEFAULT 'in_progress'
                         CONSTRAINT assessment_sessions_status_check
                         CHECK (status IN ('in_progress', 'completed', 'abandoned')),
  -- NOT NULL without a default; no share_token_expires_at, no finalized_at.
  share_token            text NOT NULL,
  CONSTRAINT assessment_sessions_share_token_key UNIQUE (share_token)
);
-- A later migration added the same uniqueness again as an index.
CREATE UNIQUE INDEX IF NOT EXISTS assessment_sessions_share_token_idx
  ON public.assessment_sessions (share_token);
CREATE INDEX IF NOT EXISTS assessment_sessions_created_at_idx ON public.assessment_sessions (created_at);
CREATE INDEX IF NOT EXISTS assessment_sessions_email_idx ON public.assessment_sessions (email);
CREATE INDEX IF NOT EXISTS assessment_sessions_user_id_idx ON public.assessment_sessions (user_id);
-- Not in the production schema: the index the portal recommends for its orphan list.
CREATE INDEX IF NOT EXISTS assessment_sessions_completed_idx
  ON public.assessment_sessions (completed_at DESC) WHERE status = 'completed';
ALTER TABLE public.assessment_sessions ENABLE ROW LEVEL SECURITY;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                 AND tablename = 'assessment_sessions' AND policyname = 'Sessions are readable') THEN
    CREATE POLICY "Sessions are readable" ON public.assessment_sessions FOR SELECT USING (true);
  END IF;
END
$$;

CREATE TABLE IF NOT EXISTS public.assessment_responses (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id       uuid NOT NULL REFERENCES public.assessment_sessions (id) ON DELETE CASCADE,
  question_id      int NOT NULL,
  question_text    text NOT NULL,
  question_type    text NOT NULL,
  question_section text NOT NULL,
  answer_value     text NULL,
  answer_numeric   int NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NULL,
  CONSTRAINT assessment_responses_session_id_question_id_key UNIQUE (session_id, question_id)
);
CREATE INDEX IF NOT EXISTS assessment_responses_session_question_idx
  ON public.assessment_responses (session_id, question_id);
ALTER TABLE public.assessment_responses ENABLE ROW LEVEL SECURITY;
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                 AND tablename = 'assessment_responses' AND policyname = 'Responses are readable') THEN
    CREATE POLICY "Responses are readable" ON public.assessment_responses FOR SELECT USING (true);
  END IF;
END
$$;

CREATE TABLE IF NOT EXISTS public.assessment_scoring_key (
  question_id         int PRIMARY KEY,
  tag                 text NULL,
  scale_type          text NOT NULL,
  reverse_scored      boolean NOT NULL DEFAULT false,
  fc_map              jsonb NULL,
  pair_group          text NULL,
  social_desirability boolean NOT NULL DEFAULT false,
  weight              numeric NOT NULL DEFAULT 1,
  section             text NULL DEFAULT 'core'
);

CREATE TABLE IF NOT EXISTS public.scoring_config (
  key        text PRIMARY KEY,
  value      jsonb NOT NULL,
  updated_at timestamptz DEFAULT now()
);

CREATE TABLE IF NOT EXISTS public.type_prototypes (
  type_code text NOT NULL,
  func      text NOT NULL,
  block     text NOT NULL,
  PRIMARY KEY (type_code, func)
);

CREATE TABLE IF NOT EXISTS public.calibration_model (
  id         bigserial PRIMARY KEY,
  version    text NOT NULL,
  method     text NOT NULL DEFAULT 'isotonic',
  stratum    jsonb NOT NULL,
  knots      jsonb NOT NULL,
  trained_at timestamptz NOT NULL DEFAULT now()
);

-- 57 columns; no share_token. The portal uses fewer.
CREATE TABLE IF NOT EXISTS public.profiles (
  id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id           uuid NOT NULL REFERENCES public.assessment_sessions (id),
  user_id              uuid NULL,
  type_code            text,
  base_func            text,
  creative_func        text,
  top_types            jsonb,
  top_3_fits           jsonb,
  type_scores          jsonb,
  score_fit_raw        numeric,
  score_fit_calibrated numeric,
  fit_band             text,
  top_gap              numeric,
  close_call           boolean DEFAULT false,
  strengths            jsonb,
  dimensions           jsonb,
  dims_highlights      jsonb,
  blocks               jsonb,
  blocks_norm          jsonb,
  neuro_mean           numeric,
  neuro_z              numeric,
  state_index          numeric,
  overlay_neuro        text CONSTRAINT profiles_overlay_neuro_check
                       CHECK (overlay_neuro IN ('+', '–', '0')),
  overlay_state        text CONSTRAINT profiles_overlay_state_check
                       CHECK (overlay_state IN ('+', '–', '0')),
  overlay              text,
  validity             jsonb,
  validity_status      text DEFAULT 'pass',
  confidence           text,
  conf_raw             numeric,
  conf_calibrated      numeric,
  conf_band            text,
  fc_answered_ct       int DEFAULT 0,
  fc_coverage_bucket   text DEFAULT 'None' CONSTRAINT profiles_fc_coverage_bucket_check
                       CHECK (fc_coverage_bucket IN ('None', 'Partial', 'Full')),
  results_version      text DEFAULT 'v1.1',
  version              text,
  submitted_at         timestamptz,
  recomputed_at        timestamptz,
  created_at           timestamptz DEFAULT now(),
  updated_at           timestamptz DEFAULT now(),
  -- maintained by update_fc_metrics_trigger
  fc_count             int DEFAULT 0,
  session_kind         text DEFAULT 'prism' CONSTRAINT profiles_session_kind_check
                       CHECK (session_kind IN ('prism', 'pilot')),
  -- columns of later app features the portal never reads or writes
  email                text,
  display_name         text,
  locale               text DEFAULT 'en',
  is_public            boolean DEFAULT false,
  notes                text,
  raw_scores           jsonb,
  percentiles          jsonb,
  narrative            jsonb,
  report_url           text,
  pdf_generated_at     timestamptz,
  shared_at            timestamptz,
  viewed_at            timestamptz,
  view_count           int DEFAULT 0,
  source               text,
  engine_build         text,
  consent_research     boolean DEFAULT false,
  CONSTRAINT profiles_session_id_key UNIQUE (session_id),
  CONSTRAINT profiles_user_id_session_id_key UNIQUE (user_id, session_id)
);
-- Two more migrations each made session_id unique again.
CREATE UNIQUE INDEX IF NOT EXISTS profiles_session_id_idx ON public.profiles (session_id);
CREATE UNIQUE INDEX IF NOT EXISTS profiles_session_id_unique ON public.profiles (session_id);
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'
                 AND policyname = 'Service role can manage profiles') THEN
    -- TO public on a claim anyone can set, and no WITH CHECK.
    CREATE POLICY "Service role can manage profiles" ON public.profiles
      FOR ALL TO public USING (auth.role() = 'service_role');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'
                 AND policyname = 'svc_manage_profiles') THEN
    CREATE POLICY svc_manage_profiles ON public.profiles
      FOR ALL TO service_role USING (true) WITH CHECK (true);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'
                 AND policyname = 'Users can insert their own profiles') THEN
    CREATE POLICY "Users can insert their own profiles" ON public.profiles
      FOR INSERT TO public WITH CHECK (user_id = auth.uid());
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'
                 AND policyname = 'Users can update their own profiles') THEN
    CREATE POLICY "Users can update their own profiles" ON public.profiles
      FOR UPDATE TO public USING (user_id = auth.uid());
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = 'profiles'
                 AND policyname = 'Users can view their own profiles') THEN
    CREATE POLICY "Users can view their own profiles" ON public.profiles
      FOR SELECT TO public USING (user_id = auth.uid());
  END IF;
END
$$;

-- Written by three AFTER INSERT triggers on profiles (no RLS, granted like the rest).
CREATE TABLE IF NOT EXISTS public.dashboard_statistics (
  day        date NOT NULL,
  type_code  text NOT NULL,
  n          int NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (day, type_code)
);

CREATE TABLE IF NOT EXISTS public.fc_blocks (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  version     text NOT NULL,
  code        text NOT NULL,
  title       text NOT NULL,
  description text,
  order_index int NOT NULL,
  is_active   boolean NOT NULL DEFAULT true,
  created_at  timestamptz DEFAULT now(),
  CONSTRAINT fc_blocks_version_code_key UNIQUE (version, code)
);

CREATE TABLE IF NOT EXISTS public.fc_options (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  block_id     uuid NOT NULL REFERENCES public.fc_blocks (id) ON DELETE CASCADE,
  option_code  text NOT NULL,
  prompt       text NOT NULL,
  weights_json jsonb NOT NULL,
  order_index  int NOT NULL,
  created_at   timestamptz DEFAULT now(),
  CONSTRAINT fc_options_block_id_option_code_key UNIQUE (block_id, option_code)
);

CREATE TABLE IF NOT EXISTS public.fc_responses (
  session_id  uuid NOT NULL,
  block_id    uuid NOT NULL REFERENCES public.fc_blocks (id),
  option_id   uuid NOT NULL REFERENCES public.fc_options (id),
  answered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, block_id)
);

CREATE TABLE IF NOT EXISTS public.fc_scores (
  session_id      uuid NOT NULL,
  version         text NOT NULL,
  fc_kind         text NOT NULL,
  scores_json     jsonb NOT NULL,
  blocks_answered int NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (session_id, version, fc_kind)
);

-- 4. Trigger functions and triggers --------------------------------------------
-- The recursive one (as in the emulation's block 4; always present here).
CREATE OR REPLACE FUNCTION public.update_profile_fc_metrics() RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  UPDATE public.profiles
     SET fc_count = coalesce(NEW.fc_answered_ct, 0),
         fc_coverage_bucket = NEW.fc_coverage_bucket
   WHERE session_id = NEW.session_id;
  RETURN NEW;
END
$fn$;

-- Per-day type counts for the app's dashboard: two triggers run this one...
CREATE OR REPLACE FUNCTION public.bump_dashboard_statistics() RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO public.dashboard_statistics AS d (day, type_code, n)
  VALUES (coalesce(NEW.created_at, now())::date, coalesce(NEW.type_code, 'unknown'), 1)
  ON CONFLICT (day, type_code) DO UPDATE SET n = d.n + 1, updated_at = now();
  RETURN NEW;
END
$fn$;

-- ...and a later migration added the same through another function.
CREATE OR REPLACE FUNCTION public.refresh_dashboard_statistics() RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  INSERT INTO public.dashboard_statistics AS d (day, type_code, n)
  SELECT coalesce(NEW.created_at, now())::date, coalesce(NEW.type_code, 'unknown'), 1
  ON CONFLICT (day, type_code) DO UPDATE SET n = d.n + excluded.n, updated_at = now();
  RETURN NULL;
END
$fn$;

-- Two generations of "touch updated_at".
CREATE OR REPLACE FUNCTION public.update_updated_at_column() RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END
$fn$;

CREATE OR REPLACE FUNCTION public.handle_updated_at() RETURNS trigger
  LANGUAGE plpgsql
AS $fn$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$fn$;

DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT * FROM (VALUES
      ('profiles', 'update_fc_metrics_trigger',
       'AFTER INSERT OR UPDATE', 'update_profile_fc_metrics'),
      ('profiles', 'profiles_dashboard_statistics_insert',
       'AFTER INSERT', 'bump_dashboard_statistics'),
      ('profiles', 'on_profile_created_dashboard',
       'AFTER INSERT', 'bump_dashboard_statistics'),
      ('profiles', 'refresh_dashboard_statistics_trigger',
       'AFTER INSERT', 'refresh_dashboard_statistics'),
      ('profiles', 'update_profiles_updated_at',
       'BEFORE UPDATE', 'update_updated_at_column'),
      ('profiles', 'set_profiles_updated_at',
       'BEFORE UPDATE', 'handle_updated_at'),
      ('assessment_sessions', 'update_assessment_sessions_updated_at',
       'BEFORE UPDATE', 'update_updated_at_column'),
      ('assessment_sessions', 'set_assessment_sessions_updated_at',
       'BEFORE UPDATE', 'handle_updated_at')
    ) AS v(tbl, name, timing, fn)
  LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = t.name
                   AND tgrelid = format('public.%I', t.tbl)::regclass) THEN
      EXECUTE format('CREATE TRIGGER %I %s ON public.%I FOR EACH ROW EXECUTE FUNCTION public.%I()',
                     t.name, t.timing, t.tbl, t.fn);
    END IF;
  END LOOP;
END
$$;

-- 5. Supabase-like grants ----------------------------------------------------
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO anon, authenticated, service_role;

-- @seed: the rows the migrations seeded (the loader re-runs this part on its own). -----
-- FC v1.2, generated from remediation/data/fc_seed_v1.2.json.
INSERT INTO public.fc_blocks (id, version, code, title, description, order_index, is_active) VALUES
  ('550e8400-e29b-41d4-a716-446655440001', 'v1.2', 'WORK_PREF', 'Work Environment Preferences', 'Questions about preferred work settings, task approach, and professional environment', 1, true),
  ('550e8400-e29b-41d4-a716-446655440002', 'v1.2', 'DECISION_STYLE', 'Decision Making Style', 'Questions about how you approach decisions, process information, and reach conclusions', 2, true),
  ('550e8400-e29b-41d4-a716-446655440003', 'v1.2', 'COMM_STYLE', 'Communication & Interaction Style', 'Questions about communication preferences, social interactions, and collaboration approaches', 3, true),
  ('550e8400-e29b-41d4-a716-446655440004', 'v1.2', 'PROBLEM_SOLVE', 'Problem Solving Approach', 'Questions about how you analyze problems, generate solutions, and implement changes', 4, true),
  ('550e8400-e29b-41d4-a716-446655440005', 'v1.2', 'INFO_PROCESS', 'Information Processing Style', 'Questions about how you gather, organize, and utilize information', 5, true),
  ('550e8400-e29b-41d4-a716-446655440006', 'v1.2', 'ENERGY_FOCUS', 'Energy & Focus Patterns', 'Questions about energy sources, focus preferences, and attention patterns', 6, true)
ON CONFLICT DO NOTHING;

INSERT INTO public.fc_options (id, block_id, option_code, prompt, weights_json, order_index) VALUES
  ('650e8400-e29b-41d4-a716-446655440001', '550e8400-e29b-41d4-a716-446655440001', 'A', 'Structured environment with clear goals and measurable outcomes', '{"Fe": 0, "Fi": 0, "Ne": 0, "Ni": 1, "Se": 2, "Si": 1, "Te": 3, "Ti": 1}', 1),
  ('650e8400-e29b-41d4-a716-446655440002', '550e8400-e29b-41d4-a716-446655440001', 'B', 'Flexible environment that allows personal expression and autonomy', '{"Fe": 1, "Fi": 3, "Ne": 2, "Ni": 1, "Se": 1, "Si": 0, "Te": 0, "Ti": 1}', 2),
  ('650e8400-e29b-41d4-a716-446655440003', '550e8400-e29b-41d4-a716-446655440001', 'C', 'Dynamic environment with variety, creativity, and new possibilities', '{"Fe": 2, "Fi": 1, "Ne": 3, "Ni": 1, "Se": 2, "Si": 0, "Te": 1, "Ti": 0}', 3),
  ('650e8400-e29b-41d4-a716-446655440004', '550e8400-e29b-41d4-a716-446655440001', 'D', 'Stable environment with established procedures and consistent processes', '{"Fe": 1, "Fi": 1, "Ne": 0, "Ni": 0, "Se": 1, "Si": 3, "Te": 1, "Ti": 2}', 4),
  ('650e8400-e29b-41d4-a716-446655440005', '550e8400-e29b-41d4-a716-446655440002', 'A', 'Analyze thoroughly, consider logical frameworks, decide independently', '{"Fe": 0, "Fi": 1, "Ne": 1, "Ni": 2, "Se": 0, "Si": 1, "Te": 1, "Ti": 3}', 1),
  ('650e8400-e29b-41d4-a716-446655440006', '550e8400-e29b-41d4-a716-446655440002', 'B', 'Consider impact on people, seek input from others, build consensus', '{"Fe": 3, "Fi": 2, "Ne": 1, "Ni": 1, "Se": 1, "Si": 1, "Te": 0, "Ti": 0}', 2),
  ('650e8400-e29b-41d4-a716-446655440007', '550e8400-e29b-41d4-a716-446655440002', 'C', 'Act quickly on available information, adapt based on immediate results', '{"Fe": 1, "Fi": 0, "Ne": 2, "Ni": 0, "Se": 3, "Si": 0, "Te": 2, "Ti": 1}', 3),
  ('650e8400-e29b-41d4-a716-446655440008', '550e8400-e29b-41d4-a716-446655440002', 'D', 'Reflect on patterns and implications, envision long-term consequences', '{"Fe": 1, "Fi": 1, "Ne": 1, "Ni": 3, "Se": 0, "Si": 1, "Te": 1, "Ti": 2}', 4),
  ('650e8400-e29b-41d4-a716-446655440009', '550e8400-e29b-41d4-a716-446655440003', 'A', 'Direct communication focused on efficiency and clear outcomes', '{"Fe": 1, "Fi": 0, "Ne": 1, "Ni": 1, "Se": 2, "Si": 1, "Te": 3, "Ti": 1}', 1),
  ('650e8400-e29b-41d4-a716-446655440010', '550e8400-e29b-41d4-a716-446655440003', 'B', 'Authentic communication that honors individual values and perspectives', '{"Fe": 2, "Fi": 3, "Ne": 1, "Ni": 2, "Se": 0, "Si": 1, "Te": 0, "Ti": 1}', 2),
  ('650e8400-e29b-41d4-a716-446655440011', '550e8400-e29b-41d4-a716-446655440003', 'C', 'Warm communication that builds relationships and maintains harmony', '{"Fe": 3, "Fi": 2, "Ne": 2, "Ni": 1, "Se": 1, "Si": 1, "Te": 1, "Ti": 0}', 3),
  ('650e8400-e29b-41d4-a716-446655440012', '550e8400-e29b-41d4-a716-446655440003', 'D', 'Precise communication focused on accuracy and logical clarity', '{"Fe": 0, "Fi": 1, "Ne": 1, "Ni": 2, "Se": 0, "Si": 2, "Te": 2, "Ti": 3}', 4),
  ('650e8400-e29b-41d4-a716-446655440013', '550e8400-e29b-41d4-a716-446655440004', 'A', 'Brainstorm multiple creative solutions and explore new approaches', '{"Fe": 2, "Fi": 1, "Ne": 3, "Ni": 1, "Se": 2, "Si": 0, "Te": 1, "Ti": 1}', 1),
  ('650e8400-e29b-41d4-a716-446655440014', '550e8400-e29b-41d4-a716-446655440004', 'B', 'Apply proven methods and learn from past successful experiences', '{"Fe": 1, "Fi": 1, "Ne": 0, "Ni": 1, "Se": 1, "Si": 3, "Te": 2, "Ti": 2}', 2),
  ('650e8400-e29b-41d4-a716-446655440015', '550e8400-e29b-41d4-a716-446655440004', 'C', 'Step back to understand underlying patterns and root causes', '{"Fe": 1, "Fi": 2, "Ne": 1, "Ni": 3, "Se": 0, "Si": 1, "Te": 1, "Ti": 2}', 3),
  ('650e8400-e29b-41d4-a716-446655440016', '550e8400-e29b-41d4-a716-446655440004', 'D', 'Take immediate action and adjust approach based on real-time feedback', '{"Fe": 1, "Fi": 0, "Ne": 2, "Ni": 0, "Se": 3, "Si": 1, "Te": 2, "Ti": 0}', 4),
  ('650e8400-e29b-41d4-a716-446655440017', '550e8400-e29b-41d4-a716-446655440005', 'A', 'Synthesize information into coherent insights and future possibilities', '{"Fe": 1, "Fi": 1, "Ne": 2, "Ni": 3, "Se": 0, "Si": 1, "Te": 1, "Ti": 2}', 1),
  ('650e8400-e29b-41d4-a716-446655440018', '550e8400-e29b-41d4-a716-446655440005', 'B', 'Focus on concrete, immediately available facts and current details', '{"Fe": 1, "Fi": 0, "Ne": 1, "Ni": 0, "Se": 3, "Si": 2, "Te": 2, "Ti": 1}', 2),
  ('650e8400-e29b-41d4-a716-446655440019', '550e8400-e29b-41d4-a716-446655440005', 'C', 'Explore connections between ideas and generate new possibilities', '{"Fe": 2, "Fi": 1, "Ne": 3, "Ni": 2, "Se": 1, "Si": 0, "Te": 1, "Ti": 1}', 3),
  ('650e8400-e29b-41d4-a716-446655440020', '550e8400-e29b-41d4-a716-446655440005', 'D', 'Compare new information with established knowledge and experience', '{"Fe": 1, "Fi": 1, "Ne": 0, "Ni": 1, "Se": 2, "Si": 3, "Te": 1, "Ti": 2}', 4),
  ('650e8400-e29b-41d4-a716-446655440021', '550e8400-e29b-41d4-a716-446655440006', 'A', 'Energized by meaningful work aligned with personal values', '{"Fe": 1, "Fi": 3, "Ne": 1, "Ni": 2, "Se": 1, "Si": 1, "Te": 0, "Ti": 1}', 1),
  ('650e8400-e29b-41d4-a716-446655440022', '550e8400-e29b-41d4-a716-446655440006', 'B', 'Energized by positive interactions and helping others succeed', '{"Fe": 3, "Fi": 2, "Ne": 2, "Ni": 1, "Se": 2, "Si": 1, "Te": 1, "Ti": 0}', 2),
  ('650e8400-e29b-41d4-a716-446655440023', '550e8400-e29b-41d4-a716-446655440006', 'C', 'Energized by achieving goals and seeing measurable progress', '{"Fe": 1, "Fi": 0, "Ne": 1, "Ni": 1, "Se": 2, "Si": 2, "Te": 3, "Ti": 1}', 3),
  ('650e8400-e29b-41d4-a716-446655440024', '550e8400-e29b-41d4-a716-446655440006', 'D', 'Energized by deep understanding and intellectual mastery', '{"Fe": 0, "Fi": 1, "Ne": 1, "Ni": 2, "Se": 0, "Si": 2, "Te": 1, "Ti": 3}', 4)
ON CONFLICT DO NOTHING;

INSERT INTO public.scoring_config (key, value) VALUES ('fc_expected_min', '24')
ON CONFLICT (key) DO NOTHING;
