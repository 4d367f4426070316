"""The policy options the simulator's benchmark commands share, and the settings they make."""

from __future__ import annotations

import argparse
import dataclasses

from airtasks.simulate.settings import Settings


def add_pass_options(ap: argparse.ArgumentParser) -> None:
    """--interval, --learn-durations and --pack, defaulting to the scaler's."""
    ap.add_argument(
        "--interval", type=float, default=Settings().interval_seconds, help="seconds between passes"
    )
    ap.add_argument(
        "--learn-durations",
        action="store_true",
        help="feed decide() run times learnt from finished tasks of the same key (a queue's learn_durations)",
    )
    ap.add_argument(
        "--pack",
        action="store_true",
        help="pack new tasks onto the fullest busy nodes (QueuePolicy.pack; off by default)",
    )


def add_policy_options(ap: argparse.ArgumentParser) -> None:
    """The pass options, and one --stabilization and --idle, defaulting to the scaler's."""
    default = Settings()
    add_pass_options(ap)
    ap.add_argument(
        "--stabilization",
        type=float,
        default=default.stabilization_seconds,
        help="the scale-in window, seconds (default: decide.QueuePolicy's)",
    )
    ap.add_argument(
        "--idle",
        type=float,
        default=default.idle_seconds,
        help="how long a surplus node must run nothing before it goes, seconds (default: QueuePolicy's)",
    )


def pass_settings(args: argparse.Namespace) -> Settings:
    """The simulator's settings with the options of `add_pass_options`."""
    return dataclasses.replace(
        Settings(), interval_seconds=args.interval, learn_durations=args.learn_durations, pack=args.pack
    )


def policy_settings(args: argparse.Namespace) -> Settings:
    """The simulator's settings with the options of `add_policy_options`."""
    return dataclasses.replace(
        pass_settings(args), stabilization_seconds=args.stabilization, idle_seconds=args.idle
    )


def describe(settings: Settings) -> str:
    """The options' values, for a command's header line."""
    return (
        f"airtasks every {settings.interval_seconds:g} s, window {settings.stabilization_seconds:g} s, "
        f"idle {settings.idle_seconds:g} s, learnt run times {settings.learn_durations}, "
        f"packing {settings.pack}"
    )
