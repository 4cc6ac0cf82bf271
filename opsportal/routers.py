"""Sends every pipeline model to the `pipeline` database, everything else to `default`."""

from __future__ import annotations

from typing import Any

PIPELINE_DB = "pipeline"


def is_pipeline_model(model: type[Any]) -> bool:
    """True for the unmanaged models that map the Supabase tables."""
    return bool(getattr(model, "PIPELINE", False))


class PipelineRouter:
    """Pipeline models read and write `pipeline`; the portal's own state stays in `default`.

    Only migrations that say `hints={"target_db": "pipeline"}` (the explicit RLS and
    schema-fix migrations) ever run on the pipeline database, so nothing of the portal
    lands in its `public` schema.
    """

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return PIPELINE_DB if is_pipeline_model(model) else "default"

    db_for_write = db_for_read

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # obj._meta.model, not type(obj): request.user is a lazy wrapper.
        return is_pipeline_model(obj1._meta.model) == is_pipeline_model(obj2._meta.model)

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool:
        target = hints.get("target_db")
        if target is not None:
            return bool(db == target)
        if db == PIPELINE_DB:
            return False
        model = hints.get("model")
        return not (model is not None and is_pipeline_model(model))
