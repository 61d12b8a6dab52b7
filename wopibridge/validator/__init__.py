"""A WOPI conformance runner for Microsoft's validator test plan (``TestCases.xml``).

``wopibridge validate WOPISRC --token TOKEN`` runs the plan's groups against any WOPI host:
:mod:`.plan` loads the XML, :mod:`.checks` holds the response validators, :mod:`.requests`
builds each WOPI request, :mod:`.signing` signs them with the runner's own proof keys and
serves a discovery document for the host to trust, :mod:`.runner` executes groups and
prerequisites, :mod:`.report` prints the results and :mod:`.cli` wires the command.
"""
