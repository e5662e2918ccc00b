"""Two languages through PTB and the fake Bot API: a Russian-speaking reader's first session,
/language, a language we don't speak, and the menus set per language and per editor."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from digests.i18n import language_for
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, button, e2e_settings, logged_errors, running_bot
from tests.e2e.test_digest_rhythms import Clock, add_story, round_at, stored_chat
from tests.e2e.test_readers import seeded_db, story

START = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)  # Friday 15:00 in Moscow
EDITOR = 7720
ABSENT_EDITOR = 7721  # never opened the bot: Telegram refuses a menu for that chat


async def test_a_russian_readers_first_session_is_in_russian(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(
        tmp_path,
        *(story(n, "World", hours_ago=n) for n in range(1, 4)),
        story(9, "Sports"),
    )
    fake_api.emulator.add_user(7701, "Иван", language_code="ru")
    reader = Reader(fake_api, 7701)
    clock = Clock(START)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=START) as app:
            app.bot_data.clock = clock
            [welcome] = await reader.send("/start")
            assert "👋 Добро пожаловать в The Daily Meridian!" in welcome.text
            assert "Выберите рубрики для ежедневного дайджеста" in welcome.text
            assert [b["text"] for b in welcome.buttons] == ["Sports", "World", "Готово"]

            answer = await reader.press(welcome, button(welcome, "World"))
            assert answer["text"] == "Вы подписаны"
            assert "✓ World" in [b["text"] for b in reader.current(welcome).buttons]
            await reader.press(welcome, button(welcome, "Готово"))
            done = reader.current(welcome)
            assert "Ваши рубрики: World." in done.text
            assert "Ваш дайджест приходит ежедневно в 08:00 (UTC)" in done.text

            [timezone] = await reader.send("/timezone Europe/Moscow")
            assert "Часовой пояс: Europe/Moscow." in timezone.text
            [digest_set] = await reader.send("/digest 07:30")
            assert "ежедневно в 07:30 (Europe/Moscow). Следующий: сб, 21 мар. 2026, 07:30" in (
                digest_set.text
            )
            [bad] = await reader.send("/digest 25:00")
            assert "не время в формате ЧЧ:ММ" in bad.text and "Ничего не изменилось" in bad.text

            [settings] = await reader.send("/settings")
            assert "Ваши настройки" in settings.text
            assert "Дайджест: ежедневно в 07:30" in settings.text
            assert "Язык: Русский" in settings.text
            assert "Срочные новости: вкл." in settings.text
            assert [b["text"] for b in settings.buttons][:2] == [
                "Выбрать рубрики",
                "Выключить дайджесты",
            ]

            [latest] = await reader.send("/latest world")
            assert "World: 1 / 3" in latest.text  # the section's name stays as written
            assert "ноя" in latest.text  # the story's Russian date
            assert [b["text"] for b in latest.buttons] == ["Открыть статью", "Дальше ▶"]
            await reader.press(latest, button(latest, "Дальше"))
            turned = reader.current(latest)
            assert "World: 2 / 3" in turned.text
            assert [b["text"] for b in turned.buttons] == ["Открыть статью", "◀ Назад", "Дальше ▶"]

            await add_story(url, 301, "World", datetime(2026, 3, 20, 20, 0, tzinfo=UTC))
            slot = datetime(2026, 3, 21, 4, 30, 30, tzinfo=UTC)  # 07:30 in Moscow
            assert (await round_at(app, clock, slot)).sent == 1
            digest = reader.bot_messages()[-1]
            assert digest.text.startswith("📰 Ваш дайджест новостей · суббота, 21 марта")
            assert "Later story 301 · 20 мар. 23:00" in digest.text
            assert [b["text"] for b in digest.buttons] == [
                "⏸ Пауза на неделю",
                "Рубрики",
                "🛑 Остановить дайджесты",
            ]
            answer = await reader.press(digest, button(digest, "Пауза"))
            assert answer["text"] == "На паузе до сб, 28 мар. 2026"

            [help_text] = await reader.send("/help")
            assert "Что я умею" in help_text.text
            assert "/language — Язык: /language en или ru" in help_text.text
            assert "Редакторам" not in help_text.text

            [switched] = await reader.send("/language en")
            assert switched.text == "Done: I'll speak English here."
            [settings] = await reader.send("/settings")
            assert "Language: English" in settings.text
            chat = await stored_chat(app, 7701)
            assert (chat.language, chat.language_chosen) == ("en", True)
    assert errors == []


async def test_language_buttons_and_an_unspoken_language(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    fake_api.emulator.add_user(7702, "Hans", language_code="de")
    reader = Reader(fake_api, 7702)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=START) as app:
        [welcome] = await reader.send("/start")
        assert welcome.text.startswith("👋 Welcome to The Daily Meridian!")  # no German: English
        [chooser] = await reader.send("/language")
        assert "The bot speaks English in this chat" in chooser.text
        assert [b["text"] for b in chooser.buttons] == ["✓ English", "Русский"]
        answer = await reader.press(chooser, button(chooser, "Русский"))
        assert answer["text"] == "Готово: здесь я буду говорить по-русски."
        redrawn = reader.current(chooser)
        assert "Язык бота в этом чате: Русский" in redrawn.text
        assert [b["text"] for b in redrawn.buttons] == ["English", "✓ Русский"]
        answer = await reader.press(chooser, "G:de", force=True)  # made-up data
        assert answer["text"] == "Эта кнопка больше не работает."
        unknown, again = await reader.send("/language klingon", replies=2)
        assert [b["text"] for b in again.buttons] == ["English", "✓ Русский"]
        assert "Я не говорю на языке «klingon»" in unknown.text
        [hint] = await reader.send("hello")
        assert hint.text.startswith("Я не понял")
        chat = await stored_chat(app, 7702)
        assert (chat.language, chat.language_chosen) == ("ru", True)
    assert language_for("de") == "en"


async def test_a_private_chat_follows_telegrams_language_until_one_is_chosen(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    user = fake_api.emulator.add_user(7703, "Olga", language_code="en")
    reader = Reader(fake_api, 7703)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=START):
        [welcome] = await reader.send("/start")
        assert "Welcome" in welcome.text
        fake_api.emulator.add_user(7703, "Olga", language_code="ru-RU")  # switched her app
        [settings] = await reader.send("/settings")
        assert "Ваши настройки" in settings.text
        await reader.send("/language en")
        [settings] = await reader.send("/settings")
        assert "Your settings" in settings.text  # her choice now outweighs her app's
    assert user["id"] == 7703


async def test_menus_and_descriptions_are_set_per_language_and_for_editors(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    emulator = fake_api.emulator
    emulator.add_user(EDITOR, "Editor", started=True)
    settings = e2e_settings(fake_api, url, admin_ids=(EDITOR, ABSENT_EDITOR))
    with logged_errors() as errors:
        async with running_bot(fake_api, settings, now=START):
            pass
    english = {c["command"]: c["description"] for c in emulator.commands_for()}
    russian = {c["command"]: c["description"] for c in emulator.commands_for(None, "ru")}
    assert english["language"] == "Language: /language en or ru"
    assert russian["language"] == "Язык: /language en или ru"
    assert russian["start"] == "Начать и выбрать рубрики"
    assert english.keys() == russian.keys() and "breaking" not in english
    editor_scope = {"type": "chat", "chat_id": EDITOR}
    for language, stats in (("", "Delivery statistics"), ("ru", "Статистика рассылок")):
        editor = {
            c["command"]: c["description"] for c in emulator.commands_for(editor_scope, language)
        }
        assert {"breaking", "stats", "correct", "start", "language"} <= editor.keys()
        assert editor["stats"] == stats
    assert emulator.commands_for({"type": "chat", "chat_id": ABSENT_EDITOR}) == []
    assert (emulator.description_for() or "").startswith("News digests from the publisher")
    assert (emulator.description_for("ru") or "").startswith("Дайджесты новостей от редакции")
    assert emulator.description_for("ru", short=True) == (
        "Ваш дайджест новостей: рубрики, которые вы выбрали, тогда, когда вам удобно."
    )
    assert errors == []  # the absent editor's refusal is a warning, and the bot started


async def test_inline_results_speak_the_senders_language(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World", title="Harbour storm"))
    emulator = fake_api.emulator
    emulator.add_user(7731, "Пётр", language_code="ru")
    emulator.add_user(7732, "Pete", language_code="en")
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=START):
        answers = []
        for user_id in (7731, 7732):  # the same words: the cache keeps each language apart
            query_id = emulator.user_inline_query(user_id, "harbour", chat_type="group")
            await emulator.wait_for(lambda q=query_id: emulator.is_inline_answered(q))
            answers.append(emulator.inline_answers[query_id])
    russian, english = ([r["text"] for r in answer["results"]] for answer in answers)
    assert russian == ["Harbour storm\nSummary 1\n\nЧитать дальше"]
    assert english == ["Harbour storm\nSummary 1\n\nRead more"]
