"""Long inputs, one feature under one name: a timeline of a long video (``timeline``),
and following a place as audio plays (``follow``, ``live``, ``capture``), over the few
engine internals they share (``engine``)."""
