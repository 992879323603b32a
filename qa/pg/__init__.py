"""The PostgreSQL + pgvector store, chosen by QA_DATABASE_URL (docs/design.md, "The PostgreSQL store")."""
