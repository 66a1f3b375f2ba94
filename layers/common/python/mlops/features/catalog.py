"""The project's feature definitions, as deployed code: what the registry records and what
ingestion validates against.

Feast users keep their definitions in a feature repository and run ``feast apply``; here the
repository is this package (the worked example's :mod:`mlops.features.yield_example`), and
the functions apply it to the stored registry (:mod:`mlops.features.registry_store`), which
records a new version whenever a definition's content hash changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlops.features import yield_example
from mlops.features.definitions import Definition, Entity, FeatureView, OnDemandFeatureView
from mlops.features.errors import UnknownView


@dataclass(frozen=True)
class Catalog:
    """Entities, feature views and on-demand views, looked up by name."""

    entities: tuple[Entity, ...]
    feature_views: tuple[FeatureView, ...]
    on_demand_views: tuple[OnDemandFeatureView, ...] = ()

    def __post_init__(self) -> None:
        names = [v.name for v in self.feature_views] + [v.name for v in self.on_demand_views]
        if len(names) != len(set(names)):
            raise ValueError(f"view names must be unique across feature and on-demand views: {names}")

    @property
    def view_names(self) -> list[str]:
        """Every view name, feature views first."""
        return [v.name for v in self.feature_views] + [v.name for v in self.on_demand_views]

    def feature_view(self, name: str, field: str = "view") -> FeatureView:
        """The feature view called ``name``; :class:`UnknownView` (a 400) otherwise."""
        for view in self.feature_views:
            if view.name == name:
                return view
        raise UnknownView(name, [v.name for v in self.feature_views], field)

    def view(self, name: str, field: str = "views") -> FeatureView | OnDemandFeatureView:
        """A feature view or an on-demand view by name."""
        for view in (*self.feature_views, *self.on_demand_views):
            if view.name == name:
                return view
        raise UnknownView(name, self.view_names, field)

    def resolve(self, views: Iterable[FeatureView | str]) -> list[FeatureView]:
        """Feature views from definitions or names."""
        return [v if isinstance(v, FeatureView) else self.feature_view(v, "views") for v in views]

    def definitions(self) -> Sequence[Definition]:
        """Everything the registry records: entities, feature views, on-demand views."""
        return (*self.entities, *self.feature_views, *self.on_demand_views)


#: The deployed feature repository: the worked example's definitions.
CATALOG = Catalog(yield_example.ENTITIES, yield_example.FEATURE_VIEWS, yield_example.ON_DEMAND_VIEWS)
