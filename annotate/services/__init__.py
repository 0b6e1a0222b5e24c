"""Writes of the annotation feature: building campaigns, crowd entry, leasing tasks and recording votes.

The two hot paths (:func:`~annotate.services.next_task.assignment_next`,
:func:`~annotate.services.votes.vote_record`) run a fixed number of SQL statements
whatever the campaign's size: the pick walks the partial index ``comparison_pool_idx`` in serving order
and stops at the first comparison with room that the annotator has not seen, skipping rows other
transactions hold (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).

One module per concern; import each name from the module that defines it (this package re-exports nothing):

* ``display``: the URLs annotators load images from;
* ``campaigns``: a campaign's lifecycle: create, queue its build, change its status;
* ``campaign_build``: building and topping up a campaign's comparisons (model pairs, informative draws, gold);
* ``entry``: annotators entering a campaign (crowd links, signed-in users, start positions);
* ``next_task``: leasing the next comparison to an annotator (hot path, plain SQL);
* ``votes``: validating and recording a vote (hot path, plain SQL), adaptive overlap counts;
* ``db``: shared by the hot paths' SQL: value conversions and whether ``SKIP LOCKED`` is available;
* ``review``: staff's review of an annotator.
"""
