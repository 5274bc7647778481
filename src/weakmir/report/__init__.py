"""Reports a person opens: matplotlib figures (figures) and Markdown / HTML pages from one template (page)."""
