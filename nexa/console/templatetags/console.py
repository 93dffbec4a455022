from django import template

register = template.Library()


@register.filter
def get(mapping, key):
    """``{{ mapping|get:key }}``: a dict lookup by a variable key (None when absent)."""
    return mapping.get(key) if mapping else None
