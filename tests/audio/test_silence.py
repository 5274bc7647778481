import numpy as np

from weakmir.audio.silence import nonsilent_intervals, remove_silence

SR = 8000


def tone(seconds, amp):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_removes_gap_between_tones():
    x = np.concatenate([tone(1, 0.5), np.zeros(SR, np.float32), tone(1, 0.5)])[None]
    y, iv = remove_silence(x, frame_length=512, hop_length=128)
    # 2 s of tone kept, give or take a frame at each of the 2 inner edges
    assert abs(y.shape[1] - 2 * SR) <= 2 * 512
    assert len(iv) == 2
    assert iv[0, 0] == 0 and abs(iv[0, 1] - SR) <= 512 and abs(iv[1, 0] - 2 * SR) <= 512 and iv[1, 1] == 3 * SR
    # the kept spans, read from the original, are exactly the trimmed audio
    assert np.array_equal(np.concatenate([x[:, a:b] for a, b in iv], axis=1), y)


def test_quiet_part_below_30db_goes_and_above_stays():
    loud, quiet35, quiet20 = tone(1, 0.5), tone(1, 0.5 * 10 ** (-35 / 20)), tone(1, 0.5 * 10 ** (-20 / 20))
    x = np.concatenate([loud, quiet35, quiet20])[None]
    y, iv = remove_silence(x, frame_length=512, hop_length=128)
    assert abs(y.shape[1] - 2 * SR) <= 512  # the -35 dB second is gone, the -20 dB one stays
    assert iv[-1, 1] == 3 * SR


def test_sixty_db_pass_and_all_silent():
    x = np.zeros((2, SR), np.float32)
    y, iv = remove_silence(x)
    assert y.shape == (2, 0) and iv.shape == (0, 2)
    assert nonsilent_intervals(x).shape == (0, 2)
    # thresholds are applied in order: with only the 60 dB pass the -35 dB part stays
    x = np.concatenate([tone(1, 0.5), tone(1, 0.5 * 10 ** (-35 / 20))])[None]
    y60, _ = remove_silence(x, thresholds_db=(60.0,), frame_length=512, hop_length=128)
    y30, _ = remove_silence(x, frame_length=512, hop_length=128)
    assert y60.shape[1] == 2 * SR and abs(y30.shape[1] - SR) <= 512
