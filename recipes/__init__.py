"""Recipes: typed stage configs (schema), inheritance and overrides (loader), derived values (derive)."""
