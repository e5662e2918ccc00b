"""The terminal chat (`newsbot shell`): the bot's own handlers over a local request class."""
