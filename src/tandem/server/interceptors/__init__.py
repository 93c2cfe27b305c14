"""The interceptor chain and the interceptors Tandem ships."""

from tandem.server.interceptors.chain import Blocked, CallNext, Interceptor, InterceptorChain, Message
from tandem.server.interceptors.request_log import RequestLogInterceptor
from tandem.server.interceptors.timing import TimingInterceptor

__all__ = [
    "Blocked",
    "CallNext",
    "Interceptor",
    "InterceptorChain",
    "Message",
    "RequestLogInterceptor",
    "TimingInterceptor",
]
