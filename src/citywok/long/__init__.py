"""Long inputs, one feature under one name: *following*. Once a place is found, the next
stretch of input is only checked against it, not searched again.

* ``follow``: following one place (the follower, its alarm, the walk back), shared by
* ``timeline``: a long file followed to its end, stretch by stretch, and
* ``live``: live audio followed as it plays (``citywok listen``, ``WS /api/v1/listen``);
* ``capture``: where live audio comes from for the CLI (a microphone, standard input);
  the service's is :mod:`citywok.web.capture`, and :mod:`citywok.web.following` runs
  ``live`` after a listening session's answer;
* ``engine``: the few engine internals they share (the input's peaks, the stored ones);
* ``captions``: a timeline written as subtitles and chapters.

"Listen" stays the name users see (the command and the route); "stretch" is a piece of a
timeline ("segment" is an index file). Every knob is in :mod:`citywok.params`
(``FollowParams``, ``TimelineParams``, ``LiveParams``).
"""
