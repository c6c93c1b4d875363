"""Small pieces every app shares (data_prep, train, eval, export, serve): atomic writes and the
configuration error type. Imports only the standard library (and omegaconf, lazily), so any part of
the project may import it without pulling in another part."""
