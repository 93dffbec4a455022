"""HTTP routes of the booking app, mounted under /v1/ by nexa/urls.py."""

from django.urls import path

from booking.api.contracts import ContractAnalyzeView, ContractsView
from booking.api.hotels import CaseHotelsView, HotelListView, HotelSearchView
from booking.api.views import AirportSearchView

urlpatterns = [
    path("airports/search", AirportSearchView.as_view(), name="airports-search"),
    path("contracts", ContractsView.as_view(), name="contracts"),
    path("contracts/analyze-pdf", ContractAnalyzeView.as_view(), name="contracts-analyze-pdf"),
    path("hotels/list", HotelListView.as_view(), name="hotels-list"),
    path("hotels/search", HotelSearchView.as_view(), name="hotels-search"),
    path("hotels/cases/<str:case_urn>", CaseHotelsView.as_view(), name="hotels-for-case"),
]
