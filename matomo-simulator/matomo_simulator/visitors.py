"""What the simulated visitors look like: where they are, their devices, where they come from, the pages
they see and the products they buy (taken at random by hits.py), and what anonymisation leaves of a location."""

from __future__ import annotations

#: What anonymised location fields read (Matomo renders an empty country as "Unknown").
ANONYMOUS_LOCATION = {
    "country": "Unknown",
    "countryCode": "xx",
    "continent": "Unknown",
    "continentCode": "unk",
    "region": None,
    "regionCode": None,
    "city": None,
    "latitude": None,
    "longitude": None,
}

PAGES = ["/", "/pricing", "/products", "/about", "/blog/post-1", "/blog/post-2", "/contact", "/docs"]
PROFILES = [
    {
        "country": "France",
        "countryCode": "fr",
        "continent": "Europe",
        "continentCode": "eur",
        "region": "Île-de-France",
        "regionCode": "IDF",
        "city": "Paris",
        "latitude": "48.857",
        "longitude": "2.352",
        "languageCode": "fr",
        "language": "French",
    },
    {
        "country": "India",
        "countryCode": "in",
        "continent": "Asia",
        "continentCode": "asi",
        "region": "Maharashtra",
        "regionCode": "16",
        "city": "Mumbai",
        "latitude": "19.076",
        "longitude": "72.878",
        "languageCode": "en-in",
        "language": "English",
    },
    {**ANONYMOUS_LOCATION, "languageCode": "", "language": "Unknown"},  # no location, as an anonymised visit
]
DEVICES = [
    {
        "deviceType": "Desktop",
        "deviceBrand": "Unknown",
        "deviceModel": "Generic Desktop",
        "operatingSystemName": "GNU/Linux",
        "operatingSystemCode": "LIN",
        "operatingSystemVersion": "",
        "browserName": "Chrome",
        "browserCode": "CH",
        "browserVersion": "120.0",
        "browserFamily": "Blink",
        "resolution": "1920x1080",
    },
    {
        "deviceType": "Smartphone",
        "deviceBrand": "Apple",
        "deviceModel": "iPhone",
        "operatingSystemName": "iOS",
        "operatingSystemCode": "IOS",
        "operatingSystemVersion": "17.1",
        "browserName": "Mobile Safari",
        "browserCode": "MF",
        "browserVersion": "17.1",
        "browserFamily": "WebKit",
        "resolution": "390x844",
    },
]
REFERRERS = [
    {"referrerType": "direct", "referrerName": "", "referrerKeyword": "", "referrerUrl": None},
    {
        "referrerType": "search",
        "referrerName": "Google",
        "referrerKeyword": "matomo",
        "referrerUrl": "https://www.google.com/search?q=matomo",
    },
    {"referrerType": "campaign", "referrerName": "spring", "referrerKeyword": "", "referrerUrl": None},
    {
        "referrerType": "website",
        "referrerName": "news.example.net",
        "referrerKeyword": "",
        "referrerUrl": "https://news.example.net/a",
    },
    {
        "referrerType": "social",
        "referrerName": "Mastodon",
        "referrerKeyword": "",
        "referrerUrl": "https://mastodon.social/@example/1",
    },
]
ITEMS = [("SKU-1", "Wetsuit", "Diving", 55.0), ("SKU-2", "Fins", "Diving", 13.45), ("SKU-3", "Mask", "Snorkel", 20.0)]
