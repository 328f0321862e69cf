"""Orchestration (L3): stills, videos, panoramas, dreams."""
