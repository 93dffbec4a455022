"""The operator console (issue 14): server-rendered Django templates + htmx over the SAME services and
selectors the API uses (no second business layer), tenant-scoped by the signed-in user's operator profile.
docs/console.md says how to use each screen."""
