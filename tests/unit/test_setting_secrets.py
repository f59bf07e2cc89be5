"""Secret site settings are sealed with the installation's key and open only with it."""
import pytest
from cryptography.exceptions import InvalidTag

from adapters.setting_secrets import SettingSealer
from domain.site_settings import check_value


def test_a_sealed_secret_opens_with_its_key_only_and_an_older_plain_value_reads_as_it_was():
    sealer = SettingSealer(b"k" * 32)
    sealed = sealer.seal("s3cret pass-<&>")
    assert sealed.startswith("sealed:v1:") and "s3cret" not in sealed
    assert sealed != sealer.seal("s3cret pass-<&>")  # a fresh nonce each time
    assert sealer.open(sealed) == "s3cret pass-<&>"
    assert check_value("smtp_password", sealed) == sealed  # the domain takes the sealed form
    assert sealer.seal("") == "" and sealer.open("") == ""
    assert sealer.open("recorded-before-sealing") == "recorded-before-sealing"
    with pytest.raises(InvalidTag):
        SettingSealer(b"x" * 32).open(sealed)
    with pytest.raises(InvalidTag):
        sealer.open(sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))
