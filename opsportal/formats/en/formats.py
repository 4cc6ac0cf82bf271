"""Date formats of the admin (LANGUAGE_CODE en-us): one date-time format with its time zone
(settings.TIME_ZONE) everywhere, ISO-ordered, no microseconds: `2026-12-01 09:38:24 UTC`.

Django's own `en` formats ("Dec. 1, 2026, 4:22 a.m.") would win over settings.DATETIME_FORMAT,
so the portal sets them here (settings.FORMAT_MODULE_PATH). remediation.display.when() uses
the same format for messages, Markdown exports and values stored as text.
"""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = DATE_FORMAT
TIME_FORMAT = "H:i:s"
MONTH_DAY_FORMAT = "F j"
YEAR_MONTH_FORMAT = "F Y"
