"""The pipeline fixes of the IR-07 runbook, each a reversible migration of the pipeline database.

- A (0001): the plan's RLS policy on profiles;
- D (0002): the CHECK constraints accept the engine's vocabulary (missed by the plan);
- E (0003): the recursive trigger on profiles gets a depth guard (missed by the plan).

`executor.run(name, reverse=...)` applies or rolls back one fix; `executor.applied()` says
which are applied. A new fix is a new migration module here and an entry in FIXES.
"""
