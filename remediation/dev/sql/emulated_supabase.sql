-- Emulated Supabase database for the PRISM pipeline, as of 2025-09-17 (results v1.2.1).
--
-- The contract is spec/pipeline.md of the project brief. Used by the demo
-- (manage.py load_emulated_schema / seed_demo) and by the test suite.
-- Loading it twice is harmless: every statement is IF NOT EXISTS, OR REPLACE or
-- guarded by a catalog lookup.
--
-- Knobs (session GUCs set by the loader before running this file):
--   prism.emulate_service_role_bypassrls  'on'  = hosted Supabase (service_role BYPASSRLS)
--                                         'off' = the incident as the IR-07 plan describes it
--   prism.emulate_fc_metrics_trigger      'on'  = carry the recursive update_fc_metrics_trigger
--                                                (the schema rebuilt from the migrations)
-- Unset knobs mean 'off'.

SET client_min_messages = warning;

-- 1. Roles and the auth schema: supabase_roles_and_auth.sql (loaded first).
-- 2. Does service_role bypass RLS? The knob decides. ---------------------------
DO $$
BEGIN
  IF coalesce(current_setting('prism.emulate_service_role_bypassrls', true), 'off') = 'on' THEN
    ALTER ROLE service_role BYPASSRLS;
  ELSE
    ALTER ROLE service_role NOBYPASSRLS;
  END IF;
END
$$;

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
  share_token            text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', ''),
  share_token_expires_at timestamptz NULL,
  finalized_at           timestamptz NULL,
  CONSTRAINT assessment_sessions_share_token_key UNIQUE (share_token)
);
CREATE INDEX IF NOT EXISTS assessment_sessions_created_at_idx ON public.assessment_sessions (created_at);
CREATE INDEX IF NOT EXISTS assessment_sessions_email_idx ON public.assessment_sessions (email);
CREATE INDEX IF NOT EXISTS assessment_sessions_user_id_idx ON public.assessment_sessions (user_id);
-- Not in the production schema: the index the portal recommends for its orphan
-- list (README, "Pointing it at a real Supabase project").
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

CREATE TABLE IF NOT EXISTS public.profiles (
  id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  session_id           uuid NOT NULL REFERENCES public.assessment_sessions (id),
  user_id              uuid NULL,
  share_token          text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', ''),
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
  CONSTRAINT profiles_session_id_key UNIQUE (session_id),
  CONSTRAINT profiles_share_token_key UNIQUE (share_token)
);
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;

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

-- 4. The recursive trigger the migrations left on profiles (spec/pipeline.md) --
-- fc_count is the column the trigger maintains; it exists in a database rebuilt
-- from the migrations.
DO $$
BEGIN
  IF coalesce(current_setting('prism.emulate_fc_metrics_trigger', true), 'off') = 'on' THEN
    ALTER TABLE public.profiles ADD COLUMN IF NOT EXISTS fc_count int DEFAULT 0;
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
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'update_fc_metrics_trigger'
                   AND tgrelid = 'public.profiles'::regclass) THEN
      CREATE TRIGGER update_fc_metrics_trigger
        AFTER INSERT OR UPDATE ON public.profiles
        FOR EACH ROW EXECUTE FUNCTION public.update_profile_fc_metrics();
    END IF;
  END IF;
END
$$;

-- 5. Supabase-like grants ----------------------------------------------------
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated, service_role;
GRANT ALL ON ALL FUNCTIONS IN SCHEMA public TO anon, authenticated, service_role;
