"""The web console: server-rendered pages under ``/ui/``, served by the API process.

Pages are Jinja2 templates (autoescaped) over the same services and the same
policy as the API (``services.policy``): a page shows what its reader may read
through the API, shows a button only to whoever may press it, and the form
behind the button is judged again by the API's rule for that call, so a
hand-made post is refused as the API would refuse it. Another project's object
is 404 here as there.

Sign-in exchanges an API token for a session cookie (``services.console``);
every state-changing form carries the session's CSRF token. Live views use the
API's one stream implementation (``api.streams``) through console routes that
authenticate by the cookie, since a browser's ``EventSource`` cannot send a
token. Static assets (hand-written CSS and JavaScript, no build step) ship in
the package; nothing is loaded from elsewhere.

- ``app``: mounts the console on the API's application;
- ``deps``: the signed-in user of a request, the CSRF check;
- ``render``: the templates and their helpers (times, durations, who may what);
- ``graph``: a workflow's steps drawn as SVG, server-side;
- ``routes``: the pages, one module per kind of object.
"""

PREFIX = "/ui"  # where the console is served; each router carries it (see routes)
