"""One module per domain; each registers its Env subclass with `@register`."""
