"""A project's inventory as a tree: clouds, their regions, their cells, host counts.

What the console's inventory page draws. Four queries whatever the size of
the fleet: the clouds, the regions, the cells, and the hosts counted by
(region, cell) — the hosts themselves are paged by ``host_page``, never
loaded here. Hosts that belong to a region but no cell are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from craton_wf.db.models import Cell, Cloud, Host, Region


@dataclass
class CellNode:
    id: int
    name: str
    hosts: int = 0


@dataclass
class RegionNode:
    id: int
    name: str
    cells: list[CellNode] = field(default_factory=list)
    hosts: int = 0  # in the region, in a cell or not
    without_cell: int = 0


@dataclass
class CloudNode:
    id: int
    name: str
    regions: list[RegionNode] = field(default_factory=list)

    @property
    def hosts(self) -> int:
        return sum(region.hosts for region in self.regions)


def inventory_tree(session: Session, project_id: str) -> list[CloudNode]:
    """Every cloud of the project with its regions and cells, by name."""
    clouds = {
        cloud_id: CloudNode(cloud_id, name)
        for cloud_id, name in session.execute(
            select(Cloud.id, Cloud.name).where(Cloud.project_id == project_id).order_by(Cloud.name)
        )
    }
    regions: dict[int, RegionNode] = {}
    for region_id, cloud_id, name in session.execute(
        select(Region.id, Region.cloud_id, Region.name)
        .where(Region.project_id == project_id)
        .order_by(Region.name)
    ):
        regions[region_id] = RegionNode(region_id, name)
        if cloud_id in clouds:
            clouds[cloud_id].regions.append(regions[region_id])
    cells: dict[int, CellNode] = {}
    for cell_id, region_id, name in session.execute(
        select(Cell.id, Cell.region_id, Cell.name)
        .where(Cell.project_id == project_id)
        .order_by(Cell.name)
    ):
        cells[cell_id] = CellNode(cell_id, name)
        if region_id in regions:
            regions[region_id].cells.append(cells[cell_id])
    for host_region, host_cell, count in session.execute(
        select(Host.region_id, Host.cell_id, func.count())
        .where(Host.project_id == project_id)
        .group_by(Host.region_id, Host.cell_id)
    ):
        region = regions.get(host_region)
        if region is not None:
            region.hosts += count
            if host_cell is None:
                region.without_cell += count
        if host_cell is not None and host_cell in cells:
            cells[host_cell].hosts += count
    return list(clouds.values())
