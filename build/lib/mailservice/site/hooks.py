"""MkDocs hooks of the site: the code lives in mailservice.publishing.mkdocs_hooks (tested, typed)."""

from mailservice.publishing.mkdocs_hooks import on_config, on_env, on_files, on_page_context

__all__ = ["on_config", "on_env", "on_files", "on_page_context"]
