"""Screenshot tooling for ``main.py screenshot`` only: the workstation's states (``workstation``),
the review screen (``review``), the training panel (``training``), the admin's readers and sets
dialog (``admin``) and the made-up answers they
stage on a copy of the database (``staging``). The shipping modules never import it."""
