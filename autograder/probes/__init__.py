"""The hidden tests' probes: what each test calls, on which inputs, and how its outputs are checked.

One module per assignment, ``n<assignment>.py`` (``n03_self_attention.py``). Each function named like
a test cell's ``grade_id`` takes a ``course.grading.Probe`` ``p`` and

* draws its inputs from ``p`` (``p.randn``, ``p.rand``, ``p.randint``: a seed per submission and test,
  so every submission gets other numbers and no answer can be looked up),
* gets what it tests with ``p.get(name)``, and calls it with ``p.call(key, fn, *args, msg=...)`` or
  records an observation with ``p.put(key, value, msg=...)``, saying how it is checked (``atol``,
  ``rtol``, ``exact``, ``dtype``) and what a student reads when it fails (the concept, no value),
* names typical mistakes with ``p.mistake(key, message, wrong_fn, *args)`` (evaluated outside only),
* tests a later function on a correct earlier one with ``with p.standin(name, fn):``.

The same function runs twice on the same seed (mugrade's one code, two runs): inside the sandbox on
the student's notebook (``course.grading.ship``, which writes plain files) and outside on ``lib``,
whose objects the module's ``reference()`` returns under the notebook's names (``autograder.judge``).
These modules never import ``lib`` at module level (the kernel that runs them has no ``lib``), and
hold no expected value. ``PARTS`` (optional) shares a test's points between its parts
(``p.parts(name)``); without it a test is all or nothing.
"""
