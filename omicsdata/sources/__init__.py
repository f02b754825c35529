"""Sources: download raw files (GDC API, Hugging Face Hub, plain URLs) into the raw cache."""
