"""Explorer: a static HTML site over a workspace's log (environments, tasks, rollouts, evaluations, figures)."""
from skiller.view.data import SiteData, collect
from skiller.view.site import build, pages, serve

__all__ = ["SiteData", "build", "collect", "pages", "serve"]
