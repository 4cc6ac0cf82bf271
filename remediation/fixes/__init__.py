"""The pipeline fixes of the IR-07 runbook, each a reversible migration of the pipeline database.

- A (0001): a service-role policy on profiles, the plan's form or the strict one (forms.py);
- D (0002): the CHECK constraints accept the engine's vocabulary (missed by the plan);
- E (0003): the recursive trigger on profiles gets a depth guard (missed by the plan).

`executor.run(name, reverse=...)` applies or rolls back one fix (`executor.execute` also
takes Fix A's form and returns what the fix did); `executor.applied()` says which are
applied. A fix that refuses raises `refusal.FixRefused` and changes nothing. A new fix is
a new migration module here and an entry in FIXES.
"""
