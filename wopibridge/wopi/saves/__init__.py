"""Saves: PutFile from the request to where its bytes end up.

Read top-down: :mod:`.entry` (decide, then write or keep) → :mod:`.decide` (the one table of
what lands where and what the editor is told) and :mod:`.keeper` (writing, keeping) →
:mod:`.placing` (where a kept body goes) → :mod:`.body` (the one reader of a body),
:mod:`.quota` (kept once, within quota and age) → :mod:`.index`, :mod:`.hints`,
:mod:`.naming`. Imports only point down this list (``lint-imports`` checks it).
"""
