"""Polish and English for the console, and times in the person's own time zone.

The English text is the message id (``_("Block")``); ``POLISH`` translates it. A test
reads every ``_()`` in the templates and fails on one missing here, so a page is never
half in English. Sentences that come from syncd itself (an error's reason, a conflict's
"what to fix in the ERP") are shown as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

LANGUAGES = ("pl", "en")


def translator(language: str) -> Callable[[str], str]:
    """``_`` for one page: the Polish text when ``language`` is ``pl``, else the id."""
    if language == "pl":
        return lambda text: POLISH.get(text, text)
    return lambda text: text


def formatter(timezone: str) -> Callable[[object], str]:
    """``when`` for one page: an ISO time or a datetime as ``2024-05-02 14:03`` there."""
    zone = ZoneInfo(timezone)

    def when(value: object) -> str:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return str(value)
        if not isinstance(value, datetime):
            return "" if value is None else str(value)
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return when


POLISH: dict[str, str] = {
    # -- frame and sign-in
    "Support console": "Konsola obsługi",
    "Dashboard": "Pulpit",
    "Directory": "Katalog",
    "Mail": "Poczta",
    "Sign out": "Wyloguj",
    "Sign in": "Zaloguj",
    "Name or e-mail": "Nazwa lub e-mail",
    "Password": "Hasło",
    "Wrong name or password.": "Błędna nazwa lub hasło.",
    "Too many failed attempts: wait {wait} seconds and try again.": (
        "Zbyt wiele nieudanych prób: odczekaj {wait} s i spróbuj ponownie."
    ),
    "Sign-in is done by your company's single sign-on.": (
        "Logowanie odbywa się przez firmowe logowanie jednokrotne (SSO)."
    ),
    "Language": "Język",
    "Change": "Zmień",
    "Signed in as": "Zalogowano jako",
    "admin": "administrator",
    "support": "obsługa",
    "salesperson": "handlowiec",
    # -- errors
    "Not found": "Nie znaleziono",
    "There is no such page or contractor, or it is not one of yours.": (
        "Nie ma takiej strony ani kontrahenta albo nie jest to Twój klient."
    ),
    "Not allowed": "Brak uprawnień",
    "Busy or unavailable": "Zajęte lub niedostępne",
    "Try again in a minute.": "Spróbuj ponownie za minutę.",
    "Back to the start": "Wróć na początek",
    # -- dashboard
    "Health": "Stan",
    "healthy": "w porządku",
    "unhealthy": "wymaga uwagi",
    "Last cycle": "Ostatni cykl",
    "Next cycle": "Następny cykl",
    "not scheduled (is the service running?)": "nie zaplanowano (czy usługa działa?)",
    "none yet": "jeszcze żadnego",
    "Accounts by status": "Konta według statusu",
    "Recent cycles": "Ostatnie cykle",
    "bars: changes per cycle (max {n}); line: duration (max {s} s)": (
        "słupki: zmiany w cyklu (maks. {n}); linia: czas trwania (maks. {s} s)"
    ),
    "Sync now": "Synchronizuj teraz",
    "Conflicts": "Konflikty",
    "No conflicts.": "Brak konfliktów.",
    "Quarantined records": "Rekordy w kwarantannie",
    "retried when the ERP row changes or support resyncs it": (
        "ponawiane, gdy zmieni się rekord w ERP lub obsługa zleci synchronizację"
    ),
    "Held removals": "Wstrzymane usunięcia",
    "{n} removals were held back by the safety limit.": (
        "Limit bezpieczeństwa wstrzymał {n} usunięć."
    ),
    "Review held removals": "Przejrzyj wstrzymane usunięcia",
    "Mail queue": "Kolejka poczty",
    "Failed mail": "Nieudane wiadomości",
    "empty": "pusta",
    # -- removals
    "These accounts would be removed:": "Te konta zostaną usunięte:",
    "No removals are held back.": "Żadne usunięcia nie są wstrzymane.",
    "Let these {n} removals through": "Przepuść te usunięcia ({n})",
    "No removals are held back any more.": "Żadne usunięcia nie są już wstrzymane.",
    "The held removals changed since you looked: check again.": (
        "Wstrzymane usunięcia zmieniły się od Twojego podglądu: sprawdź ponownie."
    ),
    # -- directory
    "Search": "Szukaj",
    "Name, symbol, NIP, e-mail or login; * matches anything": (
        "Nazwa, symbol, NIP, e-mail lub login; * zastępuje dowolny tekst"
    ),
    "Accounts": "Konta",
    "No account matches.": "Żadne konto nie pasuje.",
    "Without an account": "Bez konta",
    "Look it up in the ERP": "Sprawdź w systemie ERP",
    "Key": "Klucz",
    "Symbol": "Symbol",
    "Name": "Nazwa",
    "Login": "Login",
    "Status": "Status",
    "Salesperson": "Handlowiec",
    "Why": "Dlaczego",
    "Reason": "Powód",
    "Quarantined": "W kwarantannie",
    "Retrying": "Ponawiane",
    "Not created yet": "Jeszcze nie utworzone",
    "Out of scope": "Poza zakresem",
    "{n} more contractors out of scope match: narrow the search.": (
        "Pasuje jeszcze {n} kontrahentów poza zakresem: zawęź wyszukiwanie."
    ),
    # -- card
    "Contractor": "Kontrahent",
    "ERP": "ERP",
    "The ERP cannot be reached now; this is what syncd itself knows.": (
        "System ERP jest teraz niedostępny; oto co wie sam syncd."
    ),
    "Scope": "Zakres",
    "Mapped fields": "Pola konta",
    "Warning": "Ostrzeżenie",
    "Conflict": "Konflikt",
    "Account": "Konto",
    "No portal account.": "Brak konta na portalu.",
    "blocked by {who}": "zablokowane przez: {who}",
    "blocked in the ERP": "zablokowane w systemie ERP",
    "since": "od",
    "Next cycle would": "Następny cykl",
    "Conflict at the last cycle": "Konflikt w ostatnim cyklu",
    "Actions": "Działania",
    "yes": "tak",
    "no": "nie",
    "fields": "pól",
    "Resync now": "Synchronizuj teraz",
    "Block": "Zablokuj",
    "Reason shown to the customer at sign-in": "Powód pokazywany klientowi przy logowaniu",
    "Unblock": "Odblokuj",
    "Reset password": "Zresetuj hasło",
    "Generate one and mail it": "Wygeneruj i wyślij e-mailem",
    "Use the one I type (mailed, never stored)": (
        "Użyj wpisanego (wysyłane e-mailem, nigdy nie zapisywane)"
    ),
    "Resend activation": "Wyślij ponownie aktywację",
    "History": "Historia",
    "No history yet.": "Brak historii.",
    "When": "Kiedy",
    "Who": "Kto",
    "What": "Co",
    "Result": "Wynik",
    "Template": "Szablon",
    "To": "Do",
    "Error": "Błąd",
    "No mail.": "Brak wiadomości.",
    # -- mail page
    "Outbox": "Skrzynka nadawcza",
    "all": "wszystkie",
    "pending": "oczekujące",
    "sent": "wysłane",
    "failed": "nieudane",
    "bounced": "odbite",
    "cancelled": "anulowane",
    "Attempts": "Próby",
    # -- notices
    "Done: {action} for {login}.": "Wykonano: {action} dla {login}.",
    "Done: {action} for {login}; the mail was sent.": (
        "Wykonano: {action} dla {login}; wiadomość wysłano."
    ),
    "Done: {action} for {login}; the mail could not be sent now and will be retried.": (
        "Wykonano: {action} dla {login}; wiadomości nie udało się teraz wysłać, zostanie ponowiona."
    ),
    "The password you typed IS set in the portal, but the mail was NOT delivered: "
    "tell the customer yourself, or reset again with a generated password.": (
        "Wpisane hasło JEST ustawione na portalu, ale wiadomość NIE została doręczona: "
        "przekaż je klientowi sam albo zresetuj ponownie z hasłem wygenerowanym."
    ),
    "The mail server refused the mail for good.": "Serwer pocztowy odrzucił wiadomość na stałe.",
    "Not done.": "Nie wykonano.",
    "The cycle did not run.": "Cykl się nie odbył.",
    "Cycle {run}: {changed} accounts changed, {blocked} blocked or unblocked, "
    "{failed} failed, {held} removals held back; {sent} mails sent.": (
        "Cykl {run}: zmienione konta: {changed}, zablokowane lub odblokowane: {blocked}, "
        "błędy: {failed}, wstrzymane usunięcia: {held}; wysłane wiadomości: {sent}."
    ),
}
