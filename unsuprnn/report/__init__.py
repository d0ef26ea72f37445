"""`report`: one page that answers "are my embeddings better than raw pixels?" — collected from the runs
(`collect`), laid out as comparison tables and provenance (`tables`), drawn (`figures`) and written as
HTML or Markdown (`write`); `build` joins them."""
