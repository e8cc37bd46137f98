@identity
Feature: A misconfigured tenant fails with the diagnosis Entra ID gives
  A partner's tenant, app registration or test user that is not set up as
  docs/contracts/identity.md §6 requires fails sign-in or the exchange the way a real tenant
  does, and the report names the cause and the fix.

  Scenario Outline: Sign-in to a misconfigured tenant is rejected with its AADSTS code
    Given the misconfigured tenant "<tenant>"
    When the Teams user "licensed" signs in with the Teams scopes
    Then sign-in is rejected with status <status>, error "<error>" and AADSTS<aadsts>

    Examples:
      | tenant                 | status | error              | aadsts  |
      | consent-missing        | 400    | invalid_grant      | 65001   |
      | public-client-disabled | 401    | invalid_client     | 7000218 |
      | acs-sp-missing         | 400    | invalid_client     | 650052  |
      | app-not-registered     | 400    | unauthorized_client | 700016 |

  Scenario: A wrong password is rejected with AADSTS50126
    When the Teams user "licensed" signs in with a wrong password
    Then sign-in is rejected with status 400, error "invalid_grant" and AADSTS50126

  @emulator-defined
  Scenario: A user who must use MFA cannot use the password grant
    When the Teams user "mfa" signs in with the Teams scopes
    Then sign-in is rejected with status 400, error "invalid_grant" and AADSTS50076

  Scenario: A scope Azure Communication Services does not define is rejected with AADSTS70011
    When the Teams user "licensed" signs in for the scope "https://auth.msft.communication.azure.com/Teams.ManageEverything"
    Then sign-in is rejected with status 400, error "invalid_scope" and AADSTS70011

  @emulator-defined
  Scenario: A token without Teams.ManageCalls is not exchanged
    Given the misconfigured tenant "calls-scope-missing"
    And the Teams user "licensed" has signed in for the scope "https://auth.msft.communication.azure.com/Teams.ManageChats"
    When the Entra token is exchanged for an ACS token
    Then the exchange is rejected with status 401 and code "InvalidAccessToken"
    And the diagnosis is about "lacks Teams.ManageCalls", not "another API"

  @emulator-defined
  Scenario: A user without a Teams licence signs in but is not given an ACS token
    Given the Teams user "unlicensed" has signed in with the Teams scopes
    When the Entra token is exchanged for an ACS token
    Then the exchange is rejected with status 403 and code "Forbidden"
