"""Demo and test doubles: never installed in production, never imported by the product.

- `demo`: seeding the incident into an emulated pipeline database (seed_demo);
- `emulation` and `sql/`: the emulated Supabase schema (roles, auth functions, tables);
- `edge_emulator`: a finalizeAssessment on loopback, defective on purpose like the
  deployed one, with injectable faults;
- commands: demo_setup, seed_demo, load_emulated_schema, edge_emulator, embedded_pg,
  fc_demo_answers.

Installed when DEV_TOOLS is on (DEBUG's default; the test settings always).
"""
