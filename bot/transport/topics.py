"""Forum topics on the Bot API: the Telegram adapter of digests.readers.topics' TopicMaker
port (createForumTopic, its refusals sorted by kind)."""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import BadRequest, Forbidden, TelegramError

from digests.readers.topics import TopicRefusal

log = logging.getLogger(__name__)


class TelegramTopicMaker:
    """digests.readers.topics.TopicMaker on the Bot API: createForumTopic, refusals by kind."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def create_topic(self, chat_id: int, name: str) -> int | TopicRefusal:
        try:
            topic = await self.bot.create_forum_topic(chat_id, name[:128])
        except Forbidden as exc:
            log.info("chat %s: cannot create topic %r: %s", chat_id, name, exc.message)
            return TopicRefusal.GONE
        except BadRequest as exc:
            reason = exc.message.lower()
            log.info("chat %s: cannot create topic %r: %s", chat_id, name, exc.message)
            if "not a forum" in reason or "forum_missing" in reason:
                return TopicRefusal.NOT_FORUM
            if "rights" in reason or "admin_required" in reason or "chat_admin" in reason:
                return TopicRefusal.NO_RIGHTS
            if "chat not found" in reason or "bot was kicked" in reason:
                return TopicRefusal.GONE
            return TopicRefusal.FAILED
        except TelegramError as exc:  # the network: perhaps made; the next delivery asks again
            log.warning("chat %s: creating topic %r failed: %s", chat_id, name, exc)
            return TopicRefusal.FAILED
        return topic.message_thread_id
