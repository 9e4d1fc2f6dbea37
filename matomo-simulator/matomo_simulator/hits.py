"""New visits and their hits, decided at random from the world's seed: a visitor's profile, pageviews (with the
goals they convert), events, downloads, outlinks, site searches, content impressions, carts and orders."""

from __future__ import annotations

import typing as t

from matomo_simulator.model import Action, Site, Visit
from matomo_simulator.visitors import DEVICES, ITEMS, PAGES, PROFILES, REFERRERS

if t.TYPE_CHECKING:
    import random


class HitMaker:
    """Makes visits and hits with the world's random sequence, numbering visits and links (Matomo's idlink_va)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.next_visit = 1
        self.next_link = 1

    def link_id(self) -> int:
        self.next_link += 1
        return self.next_link - 1

    def new_visit(self, site: Site) -> Visit:
        """A visit without actions yet: its visitor's profile, device, referrer and visit-scope dimensions."""
        idvisit = self.next_visit
        self.next_visit += 1
        rng = self.rng
        attrs = {**rng.choice(PROFILES), **rng.choice(DEVICES), **rng.choice(REFERRERS)}
        returning = rng.random() < 0.3
        attrs |= {
            "visitIp": f"10.0.{idvisit % 250}.{rng.randint(1, 250)}",
            "fingerprint": f"{rng.getrandbits(64):016x}",
            "userId": f"user-{rng.randint(1, 99)}" if rng.random() < 0.2 else None,
            "visitorType": "returning" if returning else "new",
            "visitCount": rng.randint(2, 9) if returning else 1,
            "daysSinceFirstVisit": rng.randint(1, 60) if returning else 0,
        }
        if rng.random() < 0.1:
            attrs["customVariables"] = {
                "1": {"customVariableName1": "plan", "customVariableValue1": rng.choice(["free", "pro"])}
            }
        visit = Visit(idvisit, site.idsite, f"{rng.getrandbits(64):016x}", attrs, [])
        for iddim, (_name, scope) in site.dimensions.items():
            if scope == "visit" and rng.random() < 0.6:
                visit.dimensions[iddim] = rng.choice(["gold", "silver", "bronze"])
        return visit

    def action_dims(self, site: Site) -> dict[int, str]:
        return {
            iddim: self.rng.choice(["shoes", "bags", "hats"])
            for iddim, (_n, scope) in site.dimensions.items()
            if scope == "action" and self.rng.random() < 0.5
        }

    def pageview(self, site: Site, at: int, path: str, pv: str) -> Action:
        attrs = {}
        if self.rng.random() < 0.1:  # page-scope custom variables (the plugin is often absent)
            attrs["customVariables"] = {"1": {"customVariablePageName1": "lang", "customVariablePageValue1": "en"}}
        return Action(
            "action",
            at,
            site.main_url + path,
            path.strip("/").title() or "Home",
            pv,
            self.link_id(),
            attrs,
            self.action_dims(site),
        )

    def actions(self, site: Site, visit: Visit, start: int, count: int) -> list[Action]:
        """`count` trackable hits from `start`, with what they trigger (goals, carts, orders)."""
        rng, actions, at = self.rng, [], start
        pv = ""
        for _ in range(count):
            roll = rng.random()
            if site.idsite == 1:
                pv = ""  # this site's tracker sends no pageview id (as in the real samples)
            elif roll < 0.45 or not pv:
                pv = f"pv{rng.getrandbits(24):06x}"
            if roll < 0.45 or not actions:
                actions += self._page_hits(site, at, pv)
            elif roll < 0.65:
                actions.append(self._event(site, at, actions[-1].url, pv))
            elif roll < 0.72:
                actions.append(Action("download", at, site.main_url + "/files/brochure.pdf", None, pv, self.link_id()))
            elif roll < 0.78:
                actions.append(Action("outlink", at, "https://partner.example.com/offer", None, pv, self.link_id()))
            elif roll < 0.84:
                actions.append(self._search(at, pv))
            elif roll < 0.92 or not site.ecommerce:
                actions.append(self._content(site, at, actions[-1].url, pv))
            else:
                actions.append(self._ecommerce(site, at, f"O-{visit.idvisit}-{len(actions)}"))
            at += rng.randint(5, 90)
        return actions

    def _page_hits(self, site: Site, at: int, pv: str) -> list[Action]:
        """A pageview (a product view on a shop, at times), and the goals its page converts."""
        rng = self.rng
        path = rng.choice(PAGES + [p for _n, p, _r in site.goals.values()])
        action = self.pageview(site, at, path, pv)
        if site.ecommerce and rng.random() < 0.2:
            sku, name, _c, price = rng.choice(ITEMS)
            action.attrs |= {"productViewPrice": price, "productViewName": name, "productViewSku": sku}
        hits = [action]
        for idgoal, (gname, pattern, revenue) in site.goals.items():
            if path == pattern:
                attrs = {"goalId": idgoal, "goalName": gname, "revenue": revenue, "goalPageId": action.page_id}
                hits.append(Action("goal", at, action.url, None, pv, None, attrs, self.action_dims(site)))
        return hits

    def _event(self, site: Site, at: int, url: str | None, pv: str) -> Action:
        rng = self.rng
        attrs = {
            "eventCategory": rng.choice(["Video", "Form", "Ecommerce"]),
            "eventAction": rng.choice(["Play", "Submit", "Cart change"]),
        }
        if rng.random() < 0.8:
            attrs["eventName"] = rng.choice(["Intro video", "Newsletter signup", "added - Fins"])
        if rng.random() < 0.6:
            attrs["eventValue"] = rng.choice([1, 42.5, 3])
        return Action("event", at, url, None, pv, self.link_id(), attrs, self.action_dims(site))

    def _search(self, at: int, pv: str) -> Action:
        rng = self.rng
        link = self.link_id()
        attrs = {
            "siteSearchKeyword": rng.choice(["shoes", "fins"]),
            "siteSearchCategory": rng.choice(["catalog", None]),
            "siteSearchCount": rng.randint(0, 9),
        }
        return Action("search", at, None, None, pv, link, attrs)

    def _content(self, site: Site, at: int, url: str | None, pv: str) -> Action:
        interaction = self.rng.choice([None, "click"])
        attrs = {
            "contentName": "Banner",
            "contentPiece": "banner.png",
            "contentTarget": site.main_url + "/sale",
            "contentInteraction": interaction,
        }
        return Action("content", at, url, None, pv, self.link_id(), attrs, self.action_dims(site))

    def _ecommerce(self, site: Site, at: int, order_id: str) -> Action:
        """An order or an abandoned cart of one or two products."""
        rng = self.rng
        kind = rng.choice(["ecommerceOrder", "ecommerceAbandonedCart"])
        items = rng.sample(ITEMS, rng.randint(1, 2))
        details = [
            {"itemSKU": s, "itemName": n, "itemCategory": c, "price": p, "quantity": q, "categories": [c]}
            for (s, n, c, p), q in zip(items, [2, 1], strict=False)
        ]
        revenue = round(sum(d["price"] * d["quantity"] for d in details), 2)
        attrs = {"revenue": revenue, "items": sum(d["quantity"] for d in details), "itemDetails": details}
        if kind == "ecommerceOrder":
            attrs |= {
                "orderId": order_id,
                "revenueSubTotal": revenue,
                "revenueTax": round(revenue * 0.1, 2),
                "revenueShipping": 5,
                "revenueDiscount": 0,
            }
        return Action(kind, at, None, None, "", None, attrs, self.action_dims(site))
