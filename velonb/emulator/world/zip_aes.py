"""A one-member zip encrypted with WinZip AES-256 (AE-2), as ``alexmullins/zip`` writes the
``data.zip`` member of a password-protected export (``reporting/container.go``).

WinZip's scheme (https://www.winzip.com/aes_info.htm): PBKDF2-HMAC-SHA1 (1000 rounds, 16-byte
salt) gives a 32-byte AES key, a 32-byte HMAC key and a 2-byte password check; the data is
AES-CTR encrypted with a little-endian block counter starting at 1 and authenticated with the
first 10 bytes of HMAC-SHA1 over the ciphertext. Method 99 with a 0x9901 extra field names the
real method (0, stored: the member is itself a zip). AE-2 leaves the CRC at 0.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

__all__ = ["encrypted_zip"]

_AES_METHOD = 99
_VERSION = 51  # 5.1: AES encryption
_FLAG_ENCRYPTED = 0x1
_FLAG_UTF8 = 0x800


def _ctr_le(key: bytes, data: bytes) -> bytes:
    """AES-CTR with WinZip's counter: 16-byte little-endian integers 1, 2, 3, ..."""
    blocks = -(-len(data) // 16)
    counters = np.zeros((blocks, 2), dtype="<u8")
    counters[:, 0] = np.arange(1, blocks + 1, dtype=np.uint64)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 (keystream)
    stream = encryptor.update(counters.tobytes()) + encryptor.finalize()
    plain = np.frombuffer(data, dtype=np.uint8)
    return (plain ^ np.frombuffer(stream, dtype=np.uint8)[: len(data)]).tobytes()


def _dos_time(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


def encrypted_zip(name: str, payload: bytes, password: str,
                  date_time: tuple[int, int, int, int, int, int]) -> bytes:
    """A zip archive holding ``payload`` as ``name``, stored and AES-256 encrypted."""
    salt = os.urandom(16)
    material = PBKDF2HMAC(algorithm=hashes.SHA1(), length=66, salt=salt,  # noqa: S303
                          iterations=1000).derive(password.encode("utf-8", "surrogateescape"))
    cipher_text = _ctr_le(material[:32], payload)
    mac = hmac.new(material[32:64], cipher_text, hashlib.sha1).digest()[:10]
    body = salt + material[64:66] + cipher_text + mac
    # 0x9901: size 7, vendor version 2 (AE-2), vendor "AE", strength 3 (256 bit), method 0
    extra = struct.pack("<HHH2sBH", 0x9901, 7, 2, b"AE", 3, 0)
    raw_name = name.encode("utf-8")
    flags = _FLAG_ENCRYPTED | (_FLAG_UTF8 if not raw_name.isascii() else 0)
    dos_time, dos_date = _dos_time(date_time)
    common = struct.pack("<HHHHHIII", _VERSION, flags, _AES_METHOD, dos_time, dos_date, 0,
                         len(body), len(payload))
    local = (struct.pack("<I", 0x04034B50) + common
             + struct.pack("<HH", len(raw_name), len(extra)) + raw_name + extra)
    central = (struct.pack("<IH", 0x02014B50, _VERSION) + common
               + struct.pack("<HHHHHII", len(raw_name), len(extra), 0, 0, 0, 0, 0)
               + raw_name + extra)
    offset = len(local) + len(body)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), offset, 0)
    return local + body + central + end
