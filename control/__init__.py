"""The control plane: configuration (``config``), the venue's assembly (``venue``), the projection
follower (``projector``), structured logs (``logs``) and the ``rialto`` command (``cli``)."""
