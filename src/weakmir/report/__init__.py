"""Reports a person opens: Markdown/HTML pages with tables and small images."""
