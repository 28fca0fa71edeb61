"""The window's screens that grew into packages of their own (one module per page)."""
