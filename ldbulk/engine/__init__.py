"""The engine: resolve selectors, provision targets, the apply workflow, its journal and report."""
