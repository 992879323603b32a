"""Store stage, embedded files: the on-disk index, its atomic replacement, and reading it without loading it whole;
the default store, where QA_DATABASE_URL is not set (docs/design.md, "Index layout, incremental builds and atomic
writes")."""
