"""Built-in checks. Every module here is imported by ``Registry.load_builtin()``.

Modules must stay cheap to import: heavy libraries (torch, pyarrow) are imported inside
the functions that need them.
"""
