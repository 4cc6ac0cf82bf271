from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict[str, Any], key: Any) -> Any:
    """mapping[str(key)] in a template."""
    return mapping.get(str(key))
