"""Talking to other systems over the network: the edge functions and alert delivery.

- `edge`: the finalizeAssessment client (timeouts, urllib3 `Retry`, never re-POSTing
  after a read timeout) and the validation of its answers;
- `alerts`: webhook and email delivery of alerts;
- `mail`: one results message over SMTP (EMAIL_URL), its reply classified (sent,
  temporary, permanent, unknown).

No models and no database access here: callers record what happened.
"""
