"""An in-car assistant: doors, engine, climate, lights, fuel and navigation of one vehicle."""
from __future__ import annotations

import random
from typing import Any, Literal, Optional

from .. import register
from ..base import Env, Rule, ToolFailure, tool, unique_ids

_DOORS = ["driver", "passenger", "rear_left", "rear_right"]
_PLACES = ["Golden Gate Park", "SFO Airport", "Union Square", "Stanford University", "Oakland Zoo",
           "Half Moon Bay", "Ferry Building"]
_BRANDS = ["Shell", "Chevron", "76", "Arco", "Valero"]


@register
class VehicleControlEnv(Env):
    domain = "vehicle_control"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "Control one car: doors, engine, climate, headlights, fuel and navigation."
    ENTITIES = {"door": "doors[].name", "station_id": "stations[].station_id", "destination": "places[]"}
    VALUE_POOLS = {
        "temperature_c": [19.0, 20.5, 22.0, 23.5],
        "fan_speed": [1, 3, 5],
        "mode": ["off", "on", "auto"],
        "lock_state": ["locked", "unlocked"],
        "action": ["start", "stop"],
        "fuel_type": ["regular", "premium", "diesel"],
        "liters": [10.0, 20.0, 30.0],
        "max_km": [5.0, 10.0, 25.0],
        "ac": [True, False],
    }
    LONG_CONTEXT_KEYS = ["trip_log"]

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        parked_locked = rng.random() < 0.8  # chosen: a parked car is usually locked
        doors = [{"name": d, "locked": parked_locked or rng.random() < 0.5, "open": False} for d in _DOORS]
        stations = [{"station_id": sid, "brand": rng.choice(_BRANDS), "distance_km": round(rng.uniform(0.5, 20), 1),
                     "fuel_types": sorted({"regular"} | set(rng.sample(["premium", "diesel"], rng.randint(0, 2)))),
                     "price_per_liter": round(rng.uniform(1.4, 2.1), 2)}
                    for sid in unique_ids(rng, "ST", rng.randint(3, 5), 100, 1000)]
        return {"model": rng.choice(["Model 3", "Civic", "Golf", "Ioniq 5"]), "engine": "off",
                "doors": doors, "climate": {"temperature_c": 21.0, "fan_speed": 2, "ac": False},
                "headlights": "auto", "fuel_liters": round(rng.uniform(8, 40), 1), "tank_capacity": 50.0,
                "odometer_km": rng.randint(5000, 90000), "navigation": None,
                "places": sorted(rng.sample(_PLACES, 5)), "stations": stations, "trip_log": []}

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Past trips in the car's log."""
        for _ in range(n):
            state["trip_log"].append({"date": f"2024-{rng.randint(1, 4):02d}-{rng.randint(1, 28):02d}",
                                      "from": rng.choice(_PLACES), "to": rng.choice(_PLACES),
                                      "km": round(rng.uniform(2, 80), 1)})
        return state

    def _door(self, name: str) -> dict[str, Any]:
        for d in self.state["doors"]:
            if d["name"] == name:
                return d
        raise ToolFailure("not_found", f"no door {name!r} (doors: {', '.join(_DOORS)})")

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, produces={"door": "doors[].name"},
          phrases=["How is the car doing?", "Give me a status report of the car."])
    def get_vehicle_status(self) -> dict:
        """Get the engine, doors, climate, lights, fuel and navigation status."""
        s = self.state
        return {"model": s["model"], "engine": s["engine"], "doors": [dict(d) for d in s["doors"]],
                "climate": dict(s["climate"]), "headlights": s["headlights"], "fuel_liters": s["fuel_liters"],
                "odometer_km": s["odometer_km"], "navigation": dict(s["navigation"]) if s["navigation"] else None}

    @tool(writes=True, consumes={"door": "door"},
          phrases=["Make the {door} door {lock_state}.", "I want the {door} door(s) {lock_state}."])
    def set_door_lock(self, door: Literal["driver", "passenger", "rear_left", "rear_right", "all"],
                      lock_state: Literal["locked", "unlocked"]) -> dict:
        """Lock or unlock one door or all doors.

        Args:
            door: Which door, or "all".
            lock_state: "locked" or "unlocked".
        """
        lock = lock_state == "locked"
        targets = self.state["doors"] if door == "all" else [self._door(door)]
        if all(d["locked"] == lock for d in targets):
            raise ToolFailure("conflict", f"{door} door(s) already {'locked' if lock else 'unlocked'}")
        for d in targets:
            d["locked"] = lock
        return {"doors": [dict(d) for d in self.state["doors"]]}

    @tool(writes=True, phrases=["Please {action} the engine.", "Can you {action} the car?"])
    def set_engine(self, action: Literal["start", "stop"]) -> dict:
        """Start or stop the engine. Starting needs every door closed and locked and fuel in the tank.

        Args:
            action: "start" or "stop".
        """
        s = self.state
        if action == "start":
            if s["engine"] == "on":
                raise ToolFailure("conflict", "engine is already running")
            unlocked = [d["name"] for d in s["doors"] if not d["locked"] or d["open"]]
            if unlocked:
                raise ToolFailure("forbidden", f"lock every door before starting (unlocked: {', '.join(unlocked)})")
            if s["fuel_liters"] <= 0:
                raise ToolFailure("conflict", "the tank is empty")
            s["engine"] = "on"
        else:
            if s["engine"] == "off":
                raise ToolFailure("conflict", "engine is already off")
            s["engine"] = "off"
        return {"engine": s["engine"]}

    @tool(writes=True, rules={"temperature_c": Rule(ge=16, le=30), "fan_speed": Rule(ge=0, le=5)},
          phrases=["Set the cabin to {temperature_c} degrees.",
                                "Make it {temperature_c}°C inside with fan speed {fan_speed}."])
    def set_climate(self, temperature_c: float, fan_speed: Optional[int] = None, ac: Optional[bool] = None) -> dict:
        """Set the cabin temperature and, optionally, fan speed and air conditioning.

        Args:
            temperature_c: Target temperature in degrees Celsius, 16 to 30.
            fan_speed: Fan speed from 0 (off) to 5.
            ac: Turn air conditioning on (true) or off (false).
        """
        if not 16 <= temperature_c <= 30:
            raise ToolFailure("invalid_request", "temperature must be between 16 and 30 °C")
        if fan_speed is not None and not 0 <= fan_speed <= 5:
            raise ToolFailure("invalid_request", "fan speed must be between 0 and 5")
        c = self.state["climate"]
        new = {"temperature_c": float(temperature_c), "fan_speed": c["fan_speed"] if fan_speed is None else fan_speed,
               "ac": c["ac"] if ac is None else ac}
        if new == c:
            raise ToolFailure("conflict", "climate is already set that way")
        self.state["climate"] = new
        return dict(new)

    @tool(writes=True, phrases=["Turn the headlights {mode}.", "Set headlights to {mode}."])
    def set_headlights(self, mode: Literal["off", "on", "auto"]) -> dict:
        """Set the headlights mode.

        Args:
            mode: "off", "on" or "auto".
        """
        if self.state["headlights"] == mode:
            raise ToolFailure("conflict", f"headlights are already {mode}")
        self.state["headlights"] = mode
        return {"headlights": mode}

    @tool(writes=False, produces={"station_id": "stations[].station_id"},
          rules={"max_km": Rule(gt=0, le=1000)},  # chosen: beyond 1000 km no station is "nearby"
          phrases=["Find gas stations with {fuel_type} nearby.", "Where can I get {fuel_type} within {max_km} km?"])
    def find_gas_stations(self, fuel_type: Literal["regular", "premium", "diesel"] = "regular",
                          max_km: Optional[float] = None) -> dict:
        """Find nearby gas stations selling a fuel type, nearest first.

        Args:
            fuel_type: The fuel needed.
            max_km: Only stations at most this far away, in km.
        """
        hits = sorted((dict(s, fuel_types=list(s["fuel_types"])) for s in self.state["stations"] if fuel_type in s["fuel_types"]
                       and (max_km is None or s["distance_km"] <= max_km)), key=lambda s: s["distance_km"])
        return {"stations": hits}

    @tool(writes=False, produces={"station_id": "station_id"}, consumes={"station_id": "station_id"},
          phrases=["Tell me about station {station_id}.", "What does {station_id} charge, and how far is it?"])
    def get_station_details(self, station_id: str) -> dict:
        """Get a gas station's brand, distance, fuels and price.

        Args:
            station_id: The station's id, e.g. ST123.
        """
        for s in self.state["stations"]:
            if s["station_id"] == station_id:
                return dict(s, fuel_types=list(s["fuel_types"]))
        raise ToolFailure("not_found", f"no station with id {station_id}")

    @tool(writes=False, produces={"destination": "places[]"},
          phrases=["Which places have I saved?", "Show my saved destinations."])
    def list_saved_places(self) -> dict:
        """List the saved navigation destinations."""
        return {"places": list(self.state["places"])}

    @tool(writes=True, consumes={"destination": "destination"}, rules={"destination": Rule(max_len=200)},
          phrases=["Navigate to {destination}.", "Take me to {destination}."])
    def start_navigation(self, destination: str) -> dict:
        """Start turn-by-turn navigation to a known place.

        Args:
            destination: Name of the place, e.g. Union Square.
        """
        if destination not in self.state["places"]:
            raise ToolFailure("not_found", f"unknown place {destination!r}")
        nav = self.state["navigation"]
        if nav and nav["destination"] == destination:
            raise ToolFailure("conflict", f"already navigating to {destination}")
        km = round(3 + (sum(map(ord, destination)) % 40), 1)  # deterministic pseudo-distance
        self.state["navigation"] = {"destination": destination, "distance_km": km, "eta_min": int(km * 2)}
        return dict(self.state["navigation"])

    @tool(writes=True, consumes={"station_id": "station_id"},
          phrases=["Route me to gas station {station_id}.", "Navigate to the station {station_id}."])
    def navigate_to_station(self, station_id: str) -> dict:
        """Start navigation to a gas station.

        Args:
            station_id: The station's id, e.g. ST123.
        """
        st = next((s for s in self.state["stations"] if s["station_id"] == station_id), None)
        if st is None:
            raise ToolFailure("not_found", f"no station with id {station_id}")
        dest = f"{st['brand']} station {station_id}"
        nav = self.state["navigation"]
        if nav and nav["destination"] == dest:
            raise ToolFailure("conflict", f"already navigating to {dest}")
        self.state["navigation"] = {"destination": dest, "distance_km": st["distance_km"],
                                    "eta_min": int(st["distance_km"] * 2) + 1}
        return dict(self.state["navigation"])

    @tool(writes=True, rules={"liters": Rule(gt=0, le=200)},  # chosen: no car tank holds more than 200 l
          phrases=["Fill up {liters} liters.", "Add {liters} liters of fuel to the tank."])
    def refuel(self, liters: float) -> dict:
        """Add fuel to the tank (the engine must be off).

        Args:
            liters: Liters to add, positive; the tank cannot overflow.
        """
        s = self.state
        if liters <= 0:
            raise ToolFailure("invalid_request", "liters must be positive")
        if s["engine"] == "on":
            raise ToolFailure("forbidden", "stop the engine before refuelling")
        room = round(s["tank_capacity"] - s["fuel_liters"], 1)
        if liters > room:
            raise ToolFailure("invalid_request", f"only {room} liters fit in the tank")
        s["fuel_liters"] = round(s["fuel_liters"] + liters, 1)
        return {"fuel_liters": s["fuel_liters"]}
