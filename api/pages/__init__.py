"""Pages people use, served by the app itself: the recipient's tracking page,
the operations board and the support console (server-rendered, plain JS for
the websocket, every asset from this package)."""
