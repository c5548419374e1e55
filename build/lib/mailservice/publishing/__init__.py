"""The public disclosure site (issue 5): sections and front matter schema (schema), `site check` (checks),
generated pages from the register (stats, generated, opendata, qr), the MkDocs hooks (mkdocs_hooks), build and
atomic publish (build), new documents (scaffold), notification campaigns (notify) and the CLI (cli)."""
