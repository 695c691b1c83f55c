import pytest

from dlbook.profiles import DEFAULT_SEED, PROFILES, Profile, ProfileError, current_profile, parse_seed


@pytest.mark.parametrize("name", PROFILES)
def test_valid_profile_names(name):
    p = current_profile({"DLBOOK_PROFILE": name})
    assert p.name == name and not p.auto


def test_profile_name_is_case_insensitive_and_trimmed():
    assert current_profile({"DLBOOK_PROFILE": " CPU "}).name == "cpu"


def test_invalid_profile_lists_valid_ones():
    with pytest.raises(ProfileError) as err:
        current_profile({"DLBOOK_PROFILE": "fast"})
    message = str(err.value)
    assert "fast" in message
    for name in PROFILES:
        assert name in message


@pytest.mark.parametrize("gpu, expected", [(True, "gpu"), (False, "cpu")])
def test_auto_profile_follows_gpu(gpu, expected):
    p = current_profile({}, gpu_visible=gpu)
    assert p.name == expected and p.auto


def test_auto_detection_runs_when_not_told(monkeypatch):
    import dlbook.devices

    monkeypatch.setattr(dlbook.devices, "gpu_visible", lambda: False)
    assert current_profile({}).name == "cpu"


def test_pick_returns_the_profiles_value():
    values = dict(smoke=1, cpu=2, gpu=3)
    assert [Profile(n).pick(**values) for n in PROFILES] == [1, 2, 3]


def test_pick_requires_all_three():
    with pytest.raises(TypeError):
        Profile("cpu").pick(smoke=1, cpu=2)  # type: ignore[call-arg]


def test_seed_default_and_override():
    assert parse_seed(None) == DEFAULT_SEED
    assert parse_seed("") == DEFAULT_SEED
    assert current_profile({"DLBOOK_PROFILE": "smoke", "DLBOOK_SEED": "7"}).seed == 7


@pytest.mark.parametrize("bad", ["seven", "-1", str(2**32)])
def test_bad_seed_is_a_clear_error(bad):
    with pytest.raises(ProfileError, match="DLBOOK_SEED"):
        parse_seed(bad)


def test_direct_construction_validates():
    with pytest.raises(ProfileError):
        Profile("tpu")
