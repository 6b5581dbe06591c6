"""Pin factories, library errors and the probe for GPIO on this machine."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator

import pytest
from gpiozero.exc import BadPinFactory, PinFactoryFallback, PWMSoftwareFallback
from gpiozero.pins.mock import MockFactory

import drivers.pins
from drivers.pins import _device_errors, fallbacks_collected, gpio_present, make_pin_factory
from kiosk.errors import DeviceError


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """Mock pins without PWM (gpiozero's default mock)."""
    f = MockFactory()
    yield f
    f.reset()


# -- pin factory ------------------------------------------------------------------------------


def test_pin_factory_default_is_gpiozeros_choice() -> None:
    assert make_pin_factory("default") is None


def test_pin_factory_mock_uses_the_simulators_factory(factory: MockFactory) -> None:
    assert make_pin_factory("mock", mock_factory=factory) is factory
    fresh = make_pin_factory("mock")
    assert isinstance(fresh, MockFactory) and fresh is not factory


def test_pin_factory_missing_library_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail, as on a machine without lgpio.
    monkeypatch.setitem(sys.modules, "gpiozero.pins.lgpio", None)
    with pytest.raises(DeviceError, match="apt-get install python3-lgpio"):
        make_pin_factory("lgpio")


def test_no_gpio_library_at_all_gets_the_hint() -> None:
    # What gpiozero raises when its default choice finds no GPIO library.
    hint = "buzzer on GPIO18.*apt-get install python3-lgpio"
    with pytest.raises(DeviceError, match=hint), _device_errors("buzzer on GPIO18"):
        raise BadPinFactory("Unable to load any default pin factory!")


def test_pin_factory_unknown_name() -> None:
    with pytest.raises(DeviceError, match="unknown pin factory 'pigpio'"):
        make_pin_factory("pigpio")


# -- is there GPIO here -----------------------------------------------------------------------


@pytest.mark.parametrize("node", ["gpiochip0", "gpiochip4", "gpiomem", "gpiomem0"])
def test_a_gpio_device_node_means_gpio(tmp_path, monkeypatch, node: str) -> None:
    monkeypatch.setattr(drivers.pins, "DEV_DIR", tmp_path)
    assert not gpio_present()
    (tmp_path / "ttyS0").touch()
    assert not gpio_present()
    (tmp_path / node).touch()
    assert gpio_present()


def test_fallback_warnings_are_collected_and_others_pass(tmp_path) -> None:
    reasons: list[str] = []
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with fallbacks_collected(reasons):
            fallback = PinFactoryFallback("Falling back from lgpio: No module named 'lgpio'")
            warnings.warn(fallback, stacklevel=1)
            warnings.warn(PWMSoftwareFallback("software PWM"), stacklevel=1)
    assert reasons == ["lgpio: No module named 'lgpio'"]
    assert [w.category for w in outside] == [PWMSoftwareFallback]
