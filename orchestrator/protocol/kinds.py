"""Names of the message kinds, so that dispatch code compares against constants, not typos."""

HELLO = "hello"
ASSIGN = "assign"
PREPARE = "prepare"
CMD = "cmd"
REPLY = "reply"
EVT = "evt"
ACK = "ack"
HB = "hb"
BYE = "bye"
ERROR = "error"

KINDS = frozenset({HELLO, ASSIGN, PREPARE, CMD, REPLY, EVT, ACK, HB, BYE, ERROR})
